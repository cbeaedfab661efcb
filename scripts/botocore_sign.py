#!/usr/bin/env python3
"""Sign one HTTP request with botocore's stock SigV4 signer and print the result.

This is the "stock SigV4 implementation nobody here wrote" for keyward's tests: botocore's
``SigV4Auth`` (the signer of boto3 / the AWS CLI) signs the request exactly as it would for an
AWS service, and this script prints what it produced.

Usage (``pip install botocore`` first):

    botocore_sign.py --method POST --url https://api.example.com/v1/reports \
        -H 'Content-Type: application/json' --data '{"a":1}' \
        --param year=2025 --date 20250115T093000Z \
        --access-key-id AbCdEf123456 --secret 'kw_test_...' \
        [--region us-east-1] [--service keyward] [--token TOKEN] [--format json|req|headers]

``--param`` adds query parameters the way boto3 does (``AWSRequest.params``: sent
form-encoded, signed RFC 3986-encoded); a query written in ``--url`` is signed as written.
``--date`` freezes the clock (default: now). Output formats:

* ``json``    (default) method, url, the headers botocore set, the canonical request, the
              string to sign and the signature;
* ``req``     the request as it goes on the wire, in the ``.req`` format of the AWS SigV4 test
              suite (request line, ``Host`` and every header botocore signed or set, a blank
              line, the body; ``Content-Length`` is added, unsigned, when there is a body, as
              the HTTP client would) -- ``keyward sign`` and ``parse_http_request`` read it;
* ``headers`` only the headers botocore set, one ``Name: value`` per line.
"""

import argparse
import datetime
import json
import sys
from urllib.parse import urlsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="GET")
    p.add_argument("--url", required=True)
    p.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    p.add_argument("--param", action="append", default=[], help="query parameter name=value")
    body = p.add_mutually_exclusive_group()
    body.add_argument("--data", help="request body (UTF-8 text)")
    body.add_argument("--data-file", help="file holding the request body")
    p.add_argument("--date", help="signing time, YYYYMMDDTHHMMSSZ (default: now)")
    p.add_argument("--access-key-id", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--token", help="session token (X-Amz-Security-Token)")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--service", default="keyward")
    p.add_argument("--format", choices=("json", "req", "headers"), default="json")
    return p.parse_args(argv)


class CapturingSigV4Auth(botocore.auth.SigV4Auth):
    """botocore's SigV4Auth, unchanged, remembering its intermediate strings."""

    def canonical_request(self, request):
        self.captured_canonical_request = super().canonical_request(request)
        return self.captured_canonical_request

    def string_to_sign(self, request, canonical_request):
        self.captured_string_to_sign = super().string_to_sign(request, canonical_request)
        return self.captured_string_to_sign

    def signature(self, string_to_sign, request):
        self.captured_signature = super().signature(string_to_sign, request)
        return self.captured_signature


def main(argv):
    args = parse_args(argv)

    if args.date:
        frozen = datetime.datetime.strptime(args.date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc
        )
        # SigV4Auth.add_auth reads the clock through this module-level name.
        botocore.auth.get_current_datetime = lambda *a, **k: frozen

    headers = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            sys.exit(f"bad header (want 'Name: value'): {h!r}")
        headers[name.strip()] = value.strip()

    if args.data_file:
        with open(args.data_file, "rb") as f:
            data = f.read()
    elif args.data is not None:
        data = args.data.encode("utf-8")
    else:
        data = b""

    params = []
    for item in args.param:
        name, _, value = item.partition("=")
        params.append((name, value))

    request = AWSRequest(
        method=args.method, url=args.url, headers=headers, data=data, params=params or None
    )
    credentials = Credentials(args.access_key_id, args.secret, args.token)
    auth = CapturingSigV4Auth(credentials, args.service, args.region)
    before = dict(request.headers.items())
    auth.add_auth(request)
    canonical_request = auth.captured_canonical_request
    string_to_sign = auth.captured_string_to_sign
    signature = auth.captured_signature
    prepared = request.prepare()

    set_by_botocore = {
        k: v for k, v in request.headers.items() if before.get(k) != v
    }
    split = urlsplit(prepared.url)
    target = split.path or "/"
    if split.query:
        target += "?" + split.query
    host = botocore.auth._host_from_url(args.url)

    if args.format == "json":
        json.dump(
            {
                "method": prepared.method,
                "url": prepared.url,
                "target": target,
                "host": host,
                "headers_set": set_by_botocore,
                "canonical_request": canonical_request,
                "string_to_sign": string_to_sign,
                "signature": signature,
                "botocore_version": botocore.__version__,
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    elif args.format == "headers":
        for k, v in set_by_botocore.items():
            sys.stdout.write(f"{k}: {v}\n")
    else:
        out = sys.stdout.buffer
        out.write(f"{prepared.method} {target} HTTP/1.1\n".encode("utf-8"))
        out.write(f"Host:{host}\n".encode("utf-8"))
        for k, v in request.headers.items():
            if k.lower() == "host":
                continue
            out.write(f"{k}:{v}\n".encode("utf-8"))
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if body:
            # Added by the HTTP client after signing, as on the wire; not signed.
            out.write(f"Content-Length:{len(body)}\n".encode("utf-8"))
            out.write(b"\n")
            out.write(body)


if __name__ == "__main__":
    main(sys.argv[1:])
