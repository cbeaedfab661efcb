//! `keyward keys usage`: a key's (or an owner's) verifications by outcome, straight from the
//! database, as a table whose rows end in a sparkline of the buckets, and by tag.

use keyward_core::analytics::{Outcome, OutcomeCounts, UsageReport};
use keyward_core::audit::ActorKind;
use keyward_core::management::UsageQuery;
use keyward_core::{Actor, Keyward};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{UsageArgs, UsageGranularity};
use crate::error::AppError;
use crate::term::{out, table, time};

/// The bars of a sparkline, lowest first: the first is a bucket with nothing.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Widest sparkline: longer ranges add neighbouring buckets together.
const SPARK_WIDTH: usize = 48;

/// `keyward keys usage`.
///
/// # Errors
/// Bad arguments, an unknown key, database failures.
pub(crate) async fn run(kw: &Keyward, req: UsageArgs, json: bool) -> Result<(), AppError> {
    let now = OffsetDateTime::now_utc();
    let rfc3339 = |flag: &str, text: &Option<String>| -> Result<Option<String>, AppError> {
        text.as_deref()
            .map(|t| {
                let at = crate::audit::instant(flag, t, now)?;
                at.format(&Rfc3339)
                    .map_err(|e| AppError::config(format!("invalid {flag}: {e}")))
            })
            .transpose()
    };
    let query = UsageQuery {
        from: rfc3339("--since", &req.since)?,
        to: rfc3339("--until", &req.until)?,
        granularity: Some(match req.by {
            UsageGranularity::Hour => "hour".to_owned(),
            UsageGranularity::Day => "day".to_owned(),
        }),
        tag: req.tag,
    };
    // Usage is read for one owner: the key's, or the one named.
    let (subject, owner, key_id) = match (req.key_id, req.owner) {
        (Some(k), _) => {
            let id = crate::term::parse_key_id(&k)?;
            let view = kw.get_key(&Actor::cli(), &id).await?;
            (
                format!("key {id} of {}", view.owner_id),
                view.owner_id,
                Some(id),
            )
        }
        (None, Some(owner)) => (format!("every key of {owner}"), owner, None),
        (None, None) => return Err(AppError::config("name a key id, or --owner")),
    };
    let actor = Actor::admin_for(owner).by(ActorKind::Cli, None);
    let report = kw.usage(&actor, key_id.as_ref(), &query).await?;
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| AppError::Io(format!("cannot encode the report: {e}")))?;
        return out(&format!("{text}\n"));
    }
    out(&render(&subject, &report))
}

/// The report as a terminal reads it.
fn render(subject: &str, report: &UsageReport) -> String {
    let unit = match report.granularity {
        keyward_core::analytics::Granularity::Hour => "hour",
        _ => "day",
    };
    let mut text = format!(
        "Verifications of {subject}, by {unit}, {} to {}",
        time(Some(report.from)),
        time(Some(report.to)),
    );
    if let Some(tag) = &report.tag {
        text.push_str(&format!(", tagged {tag}"));
    }
    text.push_str(":\n\n");
    if report.totals.total() == 0 {
        text.push_str("No verifications.\n");
        return text;
    }
    let rows: Vec<Vec<String>> = Outcome::ALL
        .iter()
        .filter(|o| report.totals.get(**o) > 0)
        .map(|o| {
            let counts: Vec<u64> = report.buckets.iter().map(|b| b.outcomes.get(*o)).collect();
            vec![
                o.as_str().to_owned(),
                report.totals.get(*o).to_string(),
                sparkline(&counts),
            ]
        })
        .collect();
    text.push_str(&table(
        &["OUTCOME", "TOTAL", &format!("PER {}", unit.to_uppercase())],
        &rows,
    ));
    if !report.tags.is_empty() {
        let rows: Vec<Vec<String>> = report
            .tags
            .iter()
            .map(|t| {
                vec![
                    t.tag.clone(),
                    t.outcomes.total().to_string(),
                    t.outcomes.valid.to_string(),
                    refused(&t.outcomes).to_string(),
                ]
            })
            .collect();
        text.push('\n');
        text.push_str(&table(&["TAG", "TOTAL", "VALID", "REFUSED"], &rows));
    }
    text
}

/// Every outcome but `valid`.
fn refused(counts: &OutcomeCounts) -> u64 {
    counts.total().saturating_sub(counts.valid)
}

/// A bar per bucket (neighbours added together past [`SPARK_WIDTH`]), scaled to the largest:
/// `▁` is nothing, `█` the most.
fn sparkline(counts: &[u64]) -> String {
    let group = counts.len().div_ceil(SPARK_WIDTH).max(1);
    let sums: Vec<u64> = counts.chunks(group).map(|c| c.iter().sum()).collect();
    let max = sums.iter().copied().max().unwrap_or(0);
    sums.iter()
        .map(|&n| {
            if n == 0 || max == 0 {
                return BARS[0];
            }
            // 1..=7 for anything counted: the smallest count still shows.
            let step = (n.saturating_mul(6) / max) as usize + 1;
            BARS[step.min(BARS.len() - 1)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn sparklines_scale_to_the_largest_and_keep_small_counts_visible() {
        assert_eq!(sparkline(&[0, 1, 50, 100]), "▁▂▅█");
        assert_eq!(sparkline(&[0, 0]), "▁▁");
        assert_eq!(sparkline(&[]), "");
        let wide = sparkline(&vec![1; 744]).chars().count();
        assert!((40..=48).contains(&wide), "{wide} bars");
    }
}
