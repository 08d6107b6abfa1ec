//! The frame of every page: language, title, skip link, navigation, language switch, sign-out.

use maud::{DOCTYPE, Markup, html};

use crate::web::i18n::{Lang, t, tf};

/// What a page knows of its visitor.
#[derive(Debug, Clone)]
pub struct Cx {
    /// The page's language.
    pub lang: Lang,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// The hub's name, once set up.
    pub hub_name: Option<String>,
    /// Signed in as the administrator (the navigation is shown).
    pub signed_in: bool,
}

impl Cx {
    /// A visitor not signed in.
    pub fn anonymous(lang: Lang, csrf: String) -> Self {
        Self {
            lang,
            csrf,
            hub_name: None,
            signed_in: false,
        }
    }

    /// The text of `key` in the page's language.
    pub fn t(&self, key: &str) -> String {
        t(self.lang, key)
    }

    /// [`Cx::t`] with arguments.
    pub fn tf(&self, key: &str, args: &[(&str, &str)]) -> String {
        tf(self.lang, key, args)
    }

    /// The CSRF field of a form.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// The navigation: path and text key.
const NAV: &[(&str, &str)] = &[
    ("/members", "nav.members"),
    ("/inbox", "nav.inbox"),
    ("/status", "nav.status"),
    ("/devices", "nav.devices"),
    ("/settings", "nav.settings"),
];

/// A whole page.
pub fn page(cx: &Cx, title: &str, body: Markup) -> Markup {
    page_at(cx, "", title, body)
}

/// A whole page whose path is `current` (marked in the navigation, and where the language
/// switch comes back to).
pub fn page_at(cx: &Cx, current: &str, title: &str, body: Markup) -> Markup {
    let lang = cx.lang;
    let other = lang.other();
    let back = if current.is_empty() { "/" } else { current };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (cx.hub_name.as_deref().unwrap_or("relais")) }
                link rel="stylesheet" href="/style.css";
            }
            body {
                a.skip href="#main" { (t(lang, "layout.skip")) }
                header {
                    p.brand { (cx.hub_name.as_deref().unwrap_or("relais")) }
                    @if cx.signed_in {
                        nav aria-label=(t(lang, "layout.nav_label")) {
                            ul {
                                @for (path, key) in NAV {
                                    li {
                                        @if *path == current {
                                            a href=(path) aria-current="page" { (t(lang, key)) }
                                        } @else {
                                            a href=(path) { (t(lang, key)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.tools {
                        form method="post" action="/language" {
                            (cx.csrf_field())
                            input type="hidden" name="lang" value=(other.code());
                            input type="hidden" name="back" value=(back);
                            button type="submit" lang=(other.code()) { (t(lang, "layout.switch")) }
                        }
                        @if cx.signed_in {
                            form method="post" action="/logout" {
                                (cx.csrf_field())
                                button type="submit" { (t(lang, "layout.logout")) }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page outside the frame's navigation (errors).
pub fn bare(lang: Lang, title: &str, body: Markup) -> Markup {
    page(&Cx::anonymous(lang, String::new()), title, body)
}

/// An error message, announced to screen readers.
pub fn error(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.error role="alert" { (message) }
        }
    }
}

/// A confirmation message.
pub fn notice(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.notice role="status" { (message) }
        }
    }
}

/// The style sheet: large text, strong contrast (all colour pairs at least 4.5:1), a visible
/// focus ring.
pub const STYLE: &str = r#"
:root { --ink: #1a1a2e; --paper: #ffffff; --accent: #0b4f8a; --muted: #4a4a5a;
  --error: #a4001d; --ok: #0a5c2f; --line: #8a8a9a; --soft: #eef3f8; }
* { box-sizing: border-box; }
html { font-size: 125%; }
body { font-family: system-ui, sans-serif; color: var(--ink); background: var(--paper);
  margin: 0; line-height: 1.5; }
.skip { position: absolute; left: -999rem; }
.skip:focus { left: 1rem; top: 1rem; background: var(--paper); padding: .5rem; z-index: 2; }
header { background: var(--accent); color: #fff; padding: .5rem 1rem; display: flex;
  flex-wrap: wrap; gap: 1rem; align-items: center; }
header .brand { font-weight: bold; margin: 0; }
header nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: .75rem; margin: 0; padding: 0; }
header a { color: #fff; }
header a[aria-current=page] { font-weight: bold; text-decoration-thickness: .2rem; }
header .tools { margin-left: auto; display: flex; gap: .5rem; }
header .tools button { background: #fff; color: var(--accent); border-color: #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
a { color: var(--accent); }
:focus-visible { outline: .2rem solid #e8a200; outline-offset: .15rem; }
.field { margin: 1rem 0; }
label { display: block; font-weight: bold; }
.hint { color: var(--muted); margin: .25rem 0; }
input[type=text], input[type=password], input[type=number], select { font-size: 1rem;
  padding: .5rem; width: 100%; max-width: 24rem; border: 2px solid var(--muted); border-radius: .3rem; }
button { font-size: 1rem; padding: .5rem 1rem; border-radius: .3rem; border: 2px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
form.inline { display: inline; }
.error { color: var(--error); font-weight: bold; border-left: .3rem solid var(--error); padding-left: .5rem; }
.notice { color: var(--ok); font-weight: bold; border-left: .3rem solid var(--ok); padding-left: .5rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .4rem; text-align: left; }
caption { text-align: left; font-weight: bold; padding: .25rem 0; }
.card { border: 1px solid var(--line); border-radius: .4rem; padding: .75rem 1rem; margin: 1rem 0; }
figure { margin: 1rem 0; }
figcaption { font-weight: bold; font-size: 1.1rem; margin-bottom: .25rem; }
svg.chart { width: 100%; height: auto; background: var(--soft); border-radius: .4rem; }
svg.chart text { font-size: 14px; fill: var(--ink); }
"#;
