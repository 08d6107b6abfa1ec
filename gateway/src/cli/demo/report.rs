//! What the demo prints: what runs where, then a line per reading Mon espace santé accepted.
//! In French then English, or in the one language the locale asks for.

use std::time::Instant;

use relais::hub::ingest::{SharedStore, with_store};
use relais::mqtt::payload::kind_slug;
use relais::store::{OutboxItem, StoreError};
use relais_protocol::{MedValue, Quantity, ReadingValue};
use tokio::sync::mpsc;

use crate::cli::output::out;

/// The languages to print in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    French,
    English,
    Both,
}

impl Lang {
    /// From `LC_ALL`, `LC_MESSAGES`, `LANG` (the first set, as the C library reads them):
    /// `fr...` French, another language English, none (or `C`/`POSIX`) both.
    pub fn from_env() -> Self {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty())
            .unwrap_or_default();
        Self::from_locale(&locale)
    }

    fn from_locale(locale: &str) -> Self {
        if locale.starts_with("fr") {
            Self::French
        } else if locale.is_empty()
            || locale == "C"
            || locale.starts_with("C.")
            || locale == "POSIX"
        {
            Self::Both
        } else {
            Self::English
        }
    }

    /// Prints `french` and/or `english`.
    pub fn say(self, french: &str, english: &str) {
        match self {
            Self::French => out!("{french}"),
            Self::English => out!("{english}"),
            Self::Both => {
                out!("{french}");
                out!("  {english}");
            }
        }
    }
}

/// One printed line per reading MES accepted, `+SECONDS  MEMBER  KIND VALUE  [DEVICE]  -> MES
/// ok`, the
/// seconds counted from `started`; until the hub stops (the channel closes).
pub async fn deliveries(
    store: SharedStore,
    mut delivered: mpsc::Receiver<OutboxItem>,
    started: Instant,
) {
    while let Some(item) = delivered.recv().await {
        let line = with_store(&store, move |s| {
            let m = s.measurement(item.measurement)?;
            let member = match item.member.or(m.member) {
                Some(id) => s.member(id)?.display_name,
                None => "-".to_owned(),
            };
            let readings = m
                .record
                .readings(m.quirks)
                .map_err(|e| StoreError::Malformed(e.to_string()))?;
            let what = readings.get(item.reading_index).map_or_else(
                || "?".to_owned(),
                |r| format!("{} {}", kind_slug(r), value(&r.value)),
            );
            let device = s
                .devices()?
                .into_iter()
                .find(|d| d.identity.address == m.address)
                .and_then(|d| d.identity.model.or(d.identity.name))
                .unwrap_or(m.address);
            Ok(format!("{member:<8} {what}  [{device}]"))
        })
        .await;
        let seconds = started.elapsed().as_secs_f64();
        match line {
            Ok(line) => out!("+{seconds:7.1}s  {line}  -> MES ok"),
            Err(e) => tracing::warn!("a delivered reading could not be shown: {e}"),
        }
    }
}

/// `62.4 kg`, `128/84 mm[Hg]`.
fn value(value: &ReadingValue) -> String {
    match value {
        ReadingValue::Single(q) => quantity(q),
        ReadingValue::BloodPressure {
            systolic,
            diastolic,
            ..
        } => format!("{}/{}", number(systolic), quantity(diastolic)),
    }
}

fn quantity(q: &Quantity) -> String {
    format!("{} {}", number(q), q.unit.ucum())
}

fn number(q: &Quantity) -> String {
    match q.value {
        MedValue::Number(n) => n.to_string(),
        MedValue::Special(s) => format!("{s:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locale_picks_the_language() {
        assert_eq!(Lang::from_locale("fr_FR.UTF-8"), Lang::French);
        assert_eq!(Lang::from_locale("en_GB.UTF-8"), Lang::English);
        assert_eq!(Lang::from_locale("C.UTF-8"), Lang::Both);
        assert_eq!(Lang::from_locale(""), Lang::Both);
    }
}
