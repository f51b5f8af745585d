//! Key pairs: create (the private key file downloads at once and is never kept), import a
//! public key, delete.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use gureum_ec2::ops as ec2;
use gureum_types::ApiError;
use maud::{html, Markup};

use crate::html::{csrf, field_error, fmt_time, layout};
use crate::session::{Posted, Session, Signed};
use crate::Console;

/// The create form (also the launch wizard's "Create new key pair" dialog).
pub fn create_form(s: &Session, error: Option<&str>, name: &str) -> Markup {
    html! {
        form #key-create method="post" action="/console/key-pairs/create" data-keypair-form {
            (csrf(s))
            label for="key-name" { "Key pair name" }
            input #key-name name="key_name" value=(name) required maxlength="255" pattern="[ -~]+" spellcheck="false"
                aria-describedby="key-name-hint" aria-invalid=[error.map(|_| "true")];
            p.hint #key-name-hint { "Up to 255 ASCII characters." }
            (field_error("key-name", error))
            fieldset {
                legend { "Key pair type" }
                label.check { input type="radio" name="key_type" value="rsa" checked; " RSA" }
                label.check { input type="radio" name="key_type" value="ed25519"; " ED25519" }
            }
            fieldset {
                legend { "Private key file format" }
                label.check { input type="radio" name="key_format" value="pem" checked; " .pem " span.muted { "(OpenSSH)" } }
                label.check { input type="radio" name="key_format" value="ppk"; " .ppk " span.muted { "(PuTTY)" } }
            }
            div.buttons {
                button type="button" data-close { "Cancel" }
                button.primary type="submit" { "Create key pair" }
            }
        }
    }
}

async fn render(
    c: &Console,
    s: &Session,
    create_err: Option<(&str, &str)>,
    import_err: Option<(&str, &str, &str)>,
) -> Response {
    let keys = match c.key_pairs(s).await {
        Ok(k) => k,
        Err(e) => return super::failed(c, s, "Key pairs", "keys", &e),
    };
    let mut r = layout(
        super::frame(c, s, "Key pairs", "keys"),
        html! {
            div.head {
                h1 { "Key pairs " span.count { "(" (keys.len()) ")" } }
                span {
                    button type="button" data-open="#import-dialog" { "Import key pair" }
                    " "
                    button.primary type="button" data-open="#create-dialog" { "Create key pair" }
                }
            }
            dialog #create-dialog aria-labelledby="create-title" open[create_err.is_some()] {
                h2 #create-title { "Create key pair" }
                (create_form(s, create_err.map(|e| e.0), create_err.map(|e| e.1).unwrap_or("")))
            }
            dialog #import-dialog aria-labelledby="import-title" open[import_err.is_some()] {
                form method="post" action="/console/key-pairs/import" {
                    h2 #import-title { "Import key pair" }
                    (csrf(s))
                    label for="import-name" { "Key pair name" }
                    input #import-name name="key_name" required maxlength="255" value=(import_err.map(|e| e.1).unwrap_or(""));
                    label for="import-file" { "Public key file" }
                    input #import-file type="file" accept=".pub,.pem,text/plain" data-file-into="#import-material";
                    label for="import-material" { "Public key contents" }
                    textarea #import-material name="public_key" rows="5" required spellcheck="false"
                        placeholder="ssh-ed25519 AAAA… or ssh-rsa AAAA…" aria-invalid=[import_err.map(|_| "true")] { (import_err.map(|e| e.2).unwrap_or("")) }
                    (field_error("import-material", import_err.map(|e| e.0)))
                    div.buttons {
                        button type="button" data-close { "Cancel" }
                        button.primary type="submit" { "Import key pair" }
                    }
                }
            }
            div.table-wrap {
                table.grid {
                    thead { tr { th { "Name" } th { "Type" } th { "Created" } th { "Fingerprint" } th { "ID" } th { span.sr { "Actions" } } } }
                    tbody {
                        @if keys.is_empty() { tr { td colspan="6" .muted { "No key pairs." } } }
                        @for k in &keys {
                            tr {
                                td { (k.name) }
                                td { (k.key_type) }
                                td.time { (fmt_time(&k.create_time)) }
                                td { code.small { (k.fingerprint) } }
                                td { code { (k.id) } }
                                td {
                                    form method="post" action="/console/key-pairs/delete" data-async data-confirm={ "Delete key pair " (k.name) "? Instances launched with it keep their key." } {
                                        (csrf(s))
                                        input type="hidden" name="key_name" value=(k.name);
                                        button.link.danger type="submit" { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    );
    if create_err.is_some() || import_err.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}

pub async fn page(State(c): State<Console>, Signed(s): Signed) -> Response {
    render(&c, &s, None, None).await
}

fn error_json(e: &ApiError, field: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "ok": false, "message": format!("{}: {}", e.code, e.message), "field": field }).to_string(),
    )
        .into_response()
}

pub async fn create(State(c): State<Console>, p: Posted) -> Response {
    let name = p.form.text("key_name");
    let key_type = p.form.get("key_type").unwrap_or("rsa").to_string();
    let key_format = p.form.get("key_format").unwrap_or("pem").to_string();
    let r = c
        .call(
            &p.session,
            ec2::key_pairs::Action::CreateKeyPair {
                key_name: name.clone(),
                key_type,
                key_format: key_format.clone(),
                tag_specifications: vec![],
            },
        )
        .await;
    match r {
        Ok(ec2::key_pairs::Response::CreateKeyPair { key, key_material }) => {
            let ext = if key_format == "ppk" { "ppk" } else { "pem" };
            // The name is the file name; keep it to characters every browser accepts there.
            let file: String = key
                .name
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() || "-_.".contains(ch) {
                        ch
                    } else {
                        '_'
                    }
                })
                .collect();
            let mut resp = (
                [
                    (
                        header::CONTENT_TYPE,
                        if ext == "pem" {
                            "application/x-pem-file".to_string()
                        } else {
                            "application/octet-stream".to_string()
                        },
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{file}.{ext}\""),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
                key_material,
            )
                .into_response();
            if let Ok(v) = key.name.parse() {
                resp.headers_mut().insert("x-key-name", v);
            }
            if let Ok(v) = key.id.parse() {
                resp.headers_mut().insert("x-key-pair-id", v);
            }
            resp
        }
        Ok(_) => error_json(&ApiError::internal(), "key_name"),
        Err(e) if p.json => error_json(&e, "key_name"),
        Err(e) => {
            let msg = format!("{}: {}", e.code, e.message);
            render(&c, &p.session, Some((&msg, &name)), None).await
        }
    }
}

pub async fn import(State(c): State<Console>, p: Posted) -> Response {
    let name = p.form.text("key_name");
    let material = p.form.text("public_key");
    let r = c
        .call(
            &p.session,
            ec2::key_pairs::Action::ImportKeyPair {
                key_name: name.clone(),
                public_key_material: material.clone().into_bytes(),
                tag_specifications: vec![],
            },
        )
        .await;
    match r {
        Ok(_) => super::back(
            &c,
            &p,
            "/console/key-pairs",
            Ok(format!("Imported key pair {name}")),
        ),
        Err(e) => {
            let msg = format!("{}: {}", e.code, e.message);
            render(&c, &p.session, None, Some((&msg, &name, &material))).await
        }
    }
}

pub async fn delete(State(c): State<Console>, p: Posted) -> Response {
    let name = p.form.text("key_name");
    let r = c
        .call(
            &p.session,
            ec2::key_pairs::Action::DeleteKeyPair {
                key_name: Some(name.clone()),
                key_pair_id: None,
            },
        )
        .await
        .map(|_| format!("Deleted key pair {name}"));
    super::back(&c, &p, "/console/key-pairs", r)
}
