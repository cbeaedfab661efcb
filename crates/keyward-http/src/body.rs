//! [`BodyBudget`]: sans-IO bounds for a request body. The adapter feeds the chunks its framework
//! yields; the budget keeps what fits, and says when to stop with which problem. The same rules
//! then hold for axum, actix-web and any later adapter.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use futures_core::Stream;

use crate::problem::Problem;
use keyward_core::sigv4::SigningOptions;

/// How much of an oversize management body is read and thrown away before answering `413`, so
/// that a client still sending sees the answer instead of a reset connection. Beyond it the
/// connection is simply closed after the answer.
const DRAIN_LIMIT: usize = 1 << 20;

/// Bounds on one request body, fed chunk by chunk.
///
/// ```
/// use keyward_http::BodyBudget;
///
/// let mut budget = BodyBudget::management(4);
/// budget.declared(Some(b"3")).unwrap();
/// budget.feed(b"ab").unwrap();
/// budget.feed(b"c").unwrap();
/// assert_eq!(budget.finish().unwrap(), b"abc");
///
/// let mut budget = BodyBudget::management(4);
/// budget.feed(b"abcdef").unwrap(); // drained: the answer waits for the end of the body
/// assert_eq!(budget.finish().unwrap_err().status, 413);
/// ```
#[derive(Debug)]
pub struct BodyBudget {
    limit: usize,
    /// Bytes read and dropped past `limit` before refusing (management bodies only).
    drain: usize,
    max_chunks: usize,
    buf: Vec<u8>,
    total: usize,
    chunks: usize,
}

impl BodyBudget {
    /// A management request body of at most `limit` bytes. Up to 1 MiB of an oversize body is
    /// read and dropped before the `413`, so the client sees the answer.
    #[must_use]
    pub fn management(limit: usize) -> Self {
        Self {
            limit,
            drain: DRAIN_LIMIT.max(limit),
            max_chunks: usize::MAX,
            buf: Vec::new(),
            total: 0,
            chunks: 0,
        }
    }

    /// A signed request's body, within [`SigningOptions::max_body_bytes`] and
    /// [`SigningOptions::max_body_frames`]: nothing past them is read. The caller bounds the
    /// time with [`SigningOptions::max_body_time`].
    #[must_use]
    pub fn signed(config: &SigningOptions) -> Self {
        Self {
            limit: config.max_body_bytes,
            drain: config.max_body_bytes,
            max_chunks: config.max_body_frames,
            buf: Vec::new(),
            total: 0,
            chunks: 0,
        }
    }

    fn too_large(&self) -> Problem {
        super::payload_too_large(self.limit)
    }

    /// Checks the `Content-Length` header before anything is read.
    ///
    /// # Errors
    /// `413` when it declares more than the budget reads.
    pub fn declared(&self, content_length: Option<&[u8]>) -> Result<(), Problem> {
        let declared = content_length
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > u64::try_from(self.drain).unwrap_or(u64::MAX)) {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// Takes the next chunk of the body.
    ///
    /// # Errors
    /// `413` when the body is past what the budget reads: stop reading and answer.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Problem> {
        self.chunks = self.chunks.saturating_add(1);
        self.total = self.total.saturating_add(chunk.len());
        if self.chunks > self.max_chunks || self.total > self.drain {
            return Err(self.too_large());
        }
        if self.total <= self.limit {
            self.buf.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// The whole body, once the framework has yielded its last chunk.
    ///
    /// # Errors
    /// `413` when an oversize body was drained.
    pub fn finish(self) -> Result<Vec<u8>, Problem> {
        if self.total > self.limit {
            Err(self.too_large())
        } else {
            Ok(self.buf)
        }
    }

    /// Reads `body`, a stream of chunks as the framework yields them, after checking its
    /// `Content-Length` header (`content_length`): the one body loop of every adapter.
    ///
    /// # Errors
    /// `413` over the budget ([`BodyBudget::declared`], [`BodyBudget::feed`]), `400` when the
    /// framework could not read the body ([`BodyBudget::unreadable`]).
    pub async fn read<S, D, E>(
        mut self,
        content_length: Option<&[u8]>,
        body: S,
    ) -> Result<Vec<u8>, Problem>
    where
        S: Stream<Item = Result<D, E>>,
        D: AsRef<[u8]>,
        E: fmt::Display,
    {
        self.declared(content_length)?;
        let mut body = pin!(body);
        while let Some(chunk) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
            let chunk = chunk.map_err(|e| {
                tracing::debug!(error = %e, "request body could not be read");
                Self::unreadable()
            })?;
            self.feed(chunk.as_ref())?;
        }
        self.finish()
    }

    /// `400`: the framework could not read the body (a transport error, a client gone).
    #[must_use]
    pub fn unreadable() -> Problem {
        super::bad_request("the request body could not be read")
    }
}

/// `work`'s output, or `None` when `deadline` (the adapter's timer) completes first.
pub(crate) async fn within<T>(
    deadline: impl Future<Output = ()>,
    work: impl Future<Output = T>,
) -> Option<T> {
    let (mut deadline, mut work) = (pin!(deadline), pin!(work));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        deadline.as_mut().poll(cx).map(|()| None)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(bytes: usize, frames: usize) -> BodyBudget {
        BodyBudget::signed(&SigningOptions {
            max_body_bytes: bytes,
            max_body_frames: frames,
            ..SigningOptions::default()
        })
    }

    #[test]
    fn signed_bounds() {
        let mut b = signed(3, 1);
        b.feed(b"abc").unwrap();
        assert_eq!(b.finish().unwrap(), b"abc");
        assert_eq!(signed(3, 1).feed(b"abcd").unwrap_err().status, 413);
        assert_eq!(signed(3, 8).declared(Some(b"4")).unwrap_err().status, 413);
        signed(3, 8).declared(Some(b" 3 ")).unwrap();
        signed(3, 8).declared(Some(b"junk")).unwrap();
        let mut b = signed(10, 2);
        b.feed(b"a").unwrap();
        b.feed(b"b").unwrap();
        assert_eq!(b.feed(b"c").unwrap_err().status, 413);
    }

    #[test]
    fn management_drains_then_refuses() {
        let mut b = BodyBudget::management(2);
        b.feed(b"abc").unwrap();
        b.feed(b"d").unwrap();
        assert_eq!(b.finish().unwrap_err().status, 413);
        let mut b = BodyBudget::management(2);
        assert_eq!(b.feed(&vec![0; DRAIN_LIMIT + 1]).unwrap_err().status, 413);
        assert!(BodyBudget::management(2).declared(Some(b"1048576")).is_ok());
        assert!(
            BodyBudget::management(2)
                .declared(Some(b"1048577"))
                .is_err()
        );
        assert_eq!(BodyBudget::unreadable().status, 400);
    }
}
