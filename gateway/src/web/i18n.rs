//! The page's texts in French (the default) and English, from `i18n/fr.toml` and
//! `i18n/en.toml` embedded at build time. Keys are `section.name`; a missing key shows as
//! `⟦key⟧`, which the tests look for.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

/// A language of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Français, the default.
    #[default]
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The `lang` attribute and cookie value.
    pub fn code(self) -> &'static str {
        match self {
            Self::Fr => "fr",
            Self::En => "en",
        }
    }

    /// `fr` or `en`.
    pub fn parse(code: &str) -> Option<Self> {
        match code.trim() {
            "fr" => Some(Self::Fr),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The other one, for the switch.
    pub fn other(self) -> Self {
        match self {
            Self::Fr => Self::En,
            Self::En => Self::Fr,
        }
    }

    /// The language chosen with the switch (cookie `lang`), else the browser's first
    /// preference among ours, else French.
    pub fn from_request(headers: &HeaderMap) -> Self {
        if let Some(lang) =
            crate::web::auth::cookie(headers, LANG_COOKIE).and_then(|c| Self::parse(&c))
        {
            return lang;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut best: Option<(f32, Self)> = None;
        for part in accept.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                .unwrap_or(1.0f32);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Self::parse(primary)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Self::Fr, |(_, l)| l)
    }
}

/// The cookie holding the language chosen with the switch.
pub const LANG_COOKIE: &str = "relais_lang";

const FR: &str = include_str!("i18n/fr.toml");
const EN: &str = include_str!("i18n/en.toml");

fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(t) => flatten(&name, t, out),
            toml::Value::String(s) => {
                out.insert(name, s.clone());
            }
            other => {
                out.insert(name, other.to_string());
            }
        }
    }
}

/// The texts of a file; a file that does not parse gives no texts (and every key shows its
/// marker), which the unit tests catch before a release.
fn load(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    match toml::from_str::<toml::Table>(text) {
        Ok(table) => flatten("", &table, &mut out),
        Err(e) => tracing::error!("a translation file does not parse: {e}"),
    }
    out
}

static TEXTS: LazyLock<[HashMap<String, String>; 2]> = LazyLock::new(|| [load(FR), load(EN)]);

fn texts(lang: Lang) -> &'static HashMap<String, String> {
    let [fr, en] = &*TEXTS;
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

/// The text of `key`; `⟦key⟧` when it is missing.
pub fn t(lang: Lang, key: &str) -> String {
    texts(lang)
        .get(key)
        .cloned()
        .unwrap_or_else(|| format!("⟦{key}⟧"))
}

/// The text of `key` with each `{name}` replaced by its value.
pub fn tf(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let mut text = t(lang, key);
    for (name, value) in args {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(lang: Lang) -> BTreeSet<&'static str> {
        texts(lang).keys().map(String::as_str).collect()
    }

    #[test]
    fn french_and_english_have_exactly_the_same_keys() {
        let (fr, en) = (keys(Lang::Fr), keys(Lang::En));
        assert!(fr.len() > 50, "the files parse: {}", fr.len());
        let only_fr: Vec<_> = fr.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&fr).collect();
        assert!(only_fr.is_empty(), "missing in en.toml: {only_fr:?}");
        assert!(only_en.is_empty(), "missing in fr.toml: {only_en:?}");
    }

    #[test]
    fn every_key_the_pages_use_exists() {
        let sources = [
            include_str!("auth.rs"),
            include_str!("layout.rs"),
            include_str!("charts.rs"),
            include_str!("pages/mod.rs"),
            include_str!("pages/members.rs"),
            include_str!("pages/inbox.rs"),
            include_str!("pages/readings.rs"),
            include_str!("pages/status.rs"),
            include_str!("pages/settings.rs"),
            include_str!("pages/devices.rs"),
        ];
        // t(lang, "key"), tf(lang, "key", ...), cx.t("key"), cx.tf("key", ...)
        let used =
            regex::Regex::new(r#"\btf?\((?:[a-z_.]+, )?"([a-z0-9_]+\.[a-z0-9_.]+)""#).unwrap();
        let fr = keys(Lang::Fr);
        let mut count = 0;
        for source in sources {
            for c in used.captures_iter(source) {
                count += 1;
                let key = c.get(1).unwrap().as_str();
                assert!(fr.contains(key), "{key} is used but not in fr.toml");
            }
        }
        assert!(count > 50, "the pattern finds the keys: {count}");
    }

    #[test]
    fn a_missing_key_shows_its_marker_and_arguments_are_filled() {
        assert_eq!(t(Lang::En, "no.such_key"), "⟦no.such_key⟧");
        let text = tf(Lang::Fr, "members.linked", &[("name", "X")]);
        assert!(!text.contains("{name}") && text.contains('X'), "{text}");
    }

    #[test]
    fn the_language_comes_from_the_cookie_then_the_browser() {
        let mut headers = HeaderMap::new();
        assert_eq!(Lang::from_request(&headers), Lang::Fr);
        headers.insert(
            "accept-language",
            "en-GB,en;q=0.9,fr;q=0.5".parse().unwrap(),
        );
        assert_eq!(Lang::from_request(&headers), Lang::En);
        headers.insert("accept-language", "de, fr;q=0.4, en;q=0.3".parse().unwrap());
        assert_eq!(Lang::from_request(&headers), Lang::Fr);
        headers.insert("cookie", "relais_lang=en".parse().unwrap());
        assert_eq!(Lang::from_request(&headers), Lang::En);
    }
}
