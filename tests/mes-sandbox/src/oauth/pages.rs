//! The HTML pages a patient sees during pairing (in French, as on MES), and the sandbox's home
//! page. Every interpolated value is escaped.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::config::TestUser;

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;\
padding:0 1rem;color:#1b1b35;line-height:1.5}h1{font-size:1.5rem}\
.sandbox{background:#fff4d6;border:1px solid #e0b400;padding:.5rem 1rem;border-radius:.5rem}\
label{display:block;margin:.75rem 0 .25rem}input[type=text],input[type=password]{width:100%;\
padding:.5rem;font-size:1rem}button{font-size:1rem;padding:.5rem 1.25rem;margin:1rem .5rem 0 0}\
.error{color:#b00020;font-weight:bold}table{border-collapse:collapse}td,th{border:1px solid #ccc;\
padding:.25rem .5rem}fieldset{border:1px solid #ccc;border-radius:.5rem}";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — bac à sable Mon espace santé</title><style>{STYLE}</style></head>\
         <body><p class=\"sandbox\">Bac à sable de test : ce n'est pas Mon espace santé.</p>\
         <h1>{title}</h1>{body}</body></html>",
        title = escape(title),
    );
    (status, Html(html)).into_response()
}

/// The login form shown by `GET /oauth/authorize`.
pub(crate) fn login(
    request_id: &str,
    partner_name: &str,
    users: &[TestUser],
    error: Option<&str>,
) -> Response {
    let rows: String = users
        .iter()
        .map(|u| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&u.login),
                escape(&u.display_name),
                escape(&u.id_pe)
            )
        })
        .collect();
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<p>Le service <strong>{partner}</strong> souhaite être relié à votre profil \
         Mon espace santé. Connectez-vous pour continuer.</p>{error_html}\
         <form method=\"post\" action=\"/oauth/login\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <label for=\"login\">Identifiant</label>\
         <input type=\"text\" id=\"login\" name=\"login\" autocomplete=\"username\" required>\
         <label for=\"password\">Mot de passe</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Se connecter</button></form>\
         <h2>Utilisateurs de test</h2><table><tr><th>Identifiant</th><th>Nom</th><th>idPe</th></tr>{rows}</table>",
        partner = escape(partner_name),
        request = escape(request_id),
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page(status, "Connexion à Mon espace santé", &body)
}

/// The consent page: reading and writing are consented to separately.
pub(crate) fn consent(
    request_id: &str,
    partner_name: &str,
    user_name: &str,
    read_requested: bool,
    write_requested: bool,
) -> Response {
    let mut boxes = String::new();
    if read_requested {
        boxes.push_str(
            "<label><input type=\"checkbox\" name=\"consent_read\" value=\"on\" checked> \
             Consulter mes mesures de santé (lecture)</label>",
        );
    }
    if write_requested {
        boxes.push_str(
            "<label><input type=\"checkbox\" name=\"consent_write\" value=\"on\" checked> \
             Ajouter des mesures de santé à mon profil (écriture)</label>",
        );
    }
    let body = format!(
        "<p>Bonjour {user}. Le service <strong>{partner}</strong> demande votre accord pour :</p>\
         <form method=\"post\" action=\"/oauth/consent\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <fieldset><legend>Autorisations</legend>{boxes}</fieldset>\
         <p>Vous pourrez retirer votre accord à tout moment.</p>\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Autoriser</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Refuser</button></form>",
        user = escape(user_name),
        partner = escape(partner_name),
        request = escape(request_id),
    );
    page(StatusCode::OK, "Autoriser l'échange de données", &body)
}

/// An error that cannot be sent back to the client (unknown client, bad redirect URI, expired
/// request).
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Demande refusée",
        &format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message)),
    )
}

/// `GET /`: what this server is.
pub(crate) fn home(base_url: &str) -> Response {
    let body = format!(
        "<p>Émulateur local de l'appariement (OAuth2) et de l'API Mesures de Mon espace santé, \
         pour les tests.</p><ul>\
         <li>Découverte : <code>{b}/.well-known/openid-configuration</code></li>\
         <li>Autorisation : <code>{b}/oauth/authorize</code></li>\
         <li>Jetons : <code>{b}/oauth/token</code></li>\
         <li>API Mesures : <code>{b}/fhir</code></li>\
         <li>Administration (boucle locale uniquement) : <code>{b}/admin/...</code></li></ul>",
        b = escape(base_url)
    );
    page(StatusCode::OK, "Bac à sable Mon espace santé", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
