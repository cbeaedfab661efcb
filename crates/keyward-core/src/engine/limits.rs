//! A verified key's rate limit and credits: settled at once when the limiter and the ledger can
//! answer without waiting (a lease they hold, memory), otherwise awaited. The rate limit first,
//! then credits, so no credit is spent on a request the rate limit refuses. A request spends
//! [`VerifyContext::cost`] credits.

use time::OffsetDateTime;

use super::Keyward;
use crate::cache::Entry;
use crate::store::{Admission, Consumed};
use crate::{VerifyContext, VerifyError};

/// The credit state a ledger reported, for the usage batch.
pub(super) type CreditState = Option<(u64, u64)>;

impl Keyward {
    /// The key's limits without waiting: `Some` with the credit state to record or the
    /// refusal, or `None`, having spent nothing, when the limiter or the ledger needs a backend.
    pub(super) fn limits_now(
        &self,
        entry: &Entry,
        ctx: &VerifyContext<'_>,
        now: OffsetDateTime,
    ) -> Option<Result<CreditState, VerifyError>> {
        let limited = entry.rate_limit();
        if let Some(limit) = limited {
            match self.0.limiter.try_acquire(&entry.quota_key(), limit, now)? {
                Ok(Admission::Allowed) => {}
                Ok(Admission::Refused { retry_after }) => {
                    self.notice_rate_limited(entry, limit, now);
                    return Some(Err(VerifyError::RateLimited { retry_after }));
                }
                Err(e) => return Some(Err(VerifyError::Unavailable(e))),
            }
        }
        let cost = ctx.credits_cost();
        let Some((credits, account)) = entry.credits().filter(|_| cost > 0) else {
            return Some(Ok(None));
        };
        let Some(consumed) = self.0.credits.try_consume(account, credits, cost, now) else {
            // `limits` takes the request from the budget again.
            if let Some(limit) = limited {
                self.0.limiter.refund(&entry.quota_key(), limit);
            }
            return None;
        };
        Some(self.credited(entry, consumed, now))
    }

    /// The key's limits, waiting for the limiter and the ledger: the credit state to record.
    pub(super) async fn limits(
        &self,
        entry: &Entry,
        ctx: &VerifyContext<'_>,
        now: OffsetDateTime,
    ) -> Result<CreditState, VerifyError> {
        if let Some(limit) = entry.rate_limit() {
            match self.0.limiter.acquire(&entry.quota_key(), limit, now).await {
                Ok(Admission::Allowed) => {}
                Ok(Admission::Refused { retry_after }) => {
                    self.notice_rate_limited(entry, limit, now);
                    return Err(VerifyError::RateLimited { retry_after });
                }
                Err(e) => return Err(VerifyError::Unavailable(e)),
            }
        }
        let cost = ctx.credits_cost();
        let Some((credits, account)) = entry.credits().filter(|_| cost > 0) else {
            return Ok(None);
        };
        let consumed = self.0.credits.consume(account, credits, cost, now).await;
        self.credited(entry, consumed, now)
    }

    /// A ledger's answer as the engine's.
    fn credited(
        &self,
        entry: &Entry,
        consumed: Result<Consumed, crate::store::StoreError>,
        now: OffsetDateTime,
    ) -> Result<CreditState, VerifyError> {
        match consumed {
            Ok((Admission::Allowed, state)) => {
                if let (Some(percent), Some(state), Some((credits, _))) =
                    (self.0.credits_notice, state, entry.credits())
                {
                    self.notice_credits(entry, credits, state, percent, now);
                }
                Ok(state)
            }
            Ok((Admission::Refused { retry_after }, _)) => {
                Err(VerifyError::UsageExhausted { retry_after })
            }
            Err(e) => Err(VerifyError::Unavailable(e)),
        }
    }
}
