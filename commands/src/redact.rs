//! Keeping secrets out of text: URLs are shown with their passwords removed (SPEC §1).

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &[
    "password",
    "sslpassword",
    "token",
    "key",
    "secret",
    "x-amz-signature",
    "x-amz-credential",
];

/// Keys of a libpq `key=value` connection string whose values are secrets.
const SECRET_KEYS: &[&str] = &["password", "sslpassword"];

/// One URL with the password in its user info and secret query values replaced by `***`; a
/// libpq `key=value` connection string (`host=… password=…`) with its password replaced.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_conninfo(url);
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, format!("#{f}")),
                None => (query, String::new()),
            };
            let parts: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                        format!("{k}=***")
                    }
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}{fragment}", parts.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

/// Every URL and every `password=` of a connection string inside free text redacted (notes,
/// titles and remote errors may carry pasted connection strings, several to a line or not).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            push_token(&mut out, &token);
            token.clear();
            out.push(c);
        } else {
            token.push(c);
        }
    }
    push_token(&mut out, &token);
    redact_conninfo(&out)
}

fn push_token(out: &mut String, token: &str) {
    if token.contains("://") {
        out.push_str(&redact_url(token));
    } else {
        out.push_str(token);
    }
}

/// `password=value` and `password = 'quoted value'` (libpq's conninfo) with the value `***`.
fn redact_conninfo(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hit = SECRET_KEYS.iter().find_map(|k| {
            let starts_word =
                i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'_';
            if !(starts_word && lower[i..].starts_with(k)) {
                return None;
            }
            let mut j = i + k.len();
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            (j < bytes.len() && bytes[j] == b'=').then_some((k.len(), j + 1))
        });
        let Some((key_len, mut j)) = hit else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
            continue;
        };
        out.push_str(&text[i..i + key_len]);
        out.push_str("=***");
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'\'' {
            // A quoted value runs to the next unescaped quote.
            j += 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(bytes.len());
        } else {
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_secret_params_are_removed() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.example.co:5432/postgres?sslmode=require"),
            "postgres://app:***@db.example.co:5432/postgres?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://u:p%40ss@h/db?password=x&sslmode=require#f"),
            "postgresql://u:***@h/db?password=***&sslmode=require#f"
        );
        assert_eq!(redact_url("https://example.com/a"), "https://example.com/a");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_urls("db is postgres://a:hunter2@x/y now"),
            "db is postgres://a:***@x/y now"
        );
        assert!(!redact_urls("postgres://a:hunter2@x").contains("hunter2"));
    }

    #[test]
    fn connection_strings_and_several_urls_to_a_line_are_redacted() {
        assert_eq!(
            redact_url("host=db.example.co port=5432 password=hunter2 dbname=app"),
            "host=db.example.co port=5432 password=*** dbname=app"
        );
        assert_eq!(
            redact_url("host=h password = 'hun ter\\'2' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact_urls("a postgres://u:hunter2@h/x\npostgres://v:hunter3@h/y\tPassword=hunter4"),
            "a postgres://u:***@h/x\npostgres://v:***@h/y\tPassword=***"
        );
        assert_eq!(
            redact_urls("no_password=kept? sslpassword=x"),
            "no_password=kept? sslpassword=***"
        );
        for text in [
            "password=",
            "password",
            "=password='",
            "ü password='ü",
            "password='unterminated",
        ] {
            assert!(!redact_urls(text).contains("unterminated"), "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn redaction_never_panics_and_never_keeps_a_password(
            text in "([a-z :/@=' \\\\\n]|password|ü|postgres://u:|hunter){0,40}"
        ) {
            let out = redact_urls(&text);
            let again = redact_urls(&format!("{text} password=hunter2"));
            proptest::prop_assert!(!again.contains("hunter2"), "{again}");
            let _ = (out, redact_url(&text));
        }
    }
}
