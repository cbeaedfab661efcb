//! Signs a request with a keyward signing key, exactly as AWS SigV4 does, and sends it.
//!
//! ```sh
//! KEYWARD_KEY=kw_live_… cargo run -p example-signing-client -- http://127.0.0.1:8080/v1/whoami
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

use keyward_core::sigv4::{AccessKey, Payload, SignableRequest, Signer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url: reqwest::Url = std::env::args()
        .nth(1)
        .unwrap_or("http://127.0.0.1:8080/v1/whoami".into())
        .parse()?;
    let raw_key = std::env::var("KEYWARD_KEY").map_err(|_| "set KEYWARD_KEY to a signing key")?;
    // The access key id is the key id: the third `_`-separated part of the key.
    let key_id = raw_key
        .split('_')
        .nth(2)
        .ok_or("KEYWARD_KEY is not a keyward key")?;

    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let headers = [("host", host.as_bytes())];
    let request = SignableRequest::new(
        "GET",
        url.path(),
        url.query(),
        &headers,
        Payload::Bytes(b""),
    );
    let signed = Signer::new("us-east-1", "keyward")?.sign(
        &AccessKey::new(key_id, raw_key.as_bytes())?,
        &request,
        time::OffsetDateTime::now_utc(),
    )?;

    let mut call = reqwest::Client::new().get(url);
    for (name, value) in signed.headers() {
        call = call.header(name, value);
    }
    let response = call.send().await?;
    println!("{} {}", response.status(), response.text().await?);
    Ok(())
}
