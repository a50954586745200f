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
/// libpq `key=value` connection string (`host=… password=…`) with its password replaced. A URL
/// without a password is returned as it is.
///
/// The user info ends at the last `@`, so a password written with an unescaped `@`, `/`, `#`
/// or `?` is hidden whole (a configured value is also redacted by its value: [`Secrets`]).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_conninfo(url);
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let (userinfo, after) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (host, tail) = after.split_at(authority_end);
    let authority = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{info}@{host}"),
        },
        None => host.to_string(),
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

/// A configured variable's value as it may be shown: a URL or connection string without its
/// password (as it is when it has none); any other value, a token or key, not at all.
pub fn shown_value(value: &str) -> Option<String> {
    let value = value.trim();
    if value.contains("://") {
        return Some(redact_url(value));
    }
    let lower = value.to_ascii_lowercase();
    let conninfo = ["host=", "dbname=", "user=", "port="]
        .iter()
        .any(|k| lower.contains(k));
    conninfo.then(|| redact_conninfo(value))
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
    // An age identity pasted anywhere: `AGE-SECRET-KEY-1…` (Bech32, upper case by spec).
    if let Some(at) = token.to_ascii_uppercase().find(AGE_SECRET_PREFIX) {
        out.push_str(&token[..at]);
        out.push_str(AGE_SECRET_PREFIX);
        out.push_str("***");
        return;
    }
    if token.contains("://") {
        out.push_str(&redact_url(token));
    } else {
        out.push_str(token);
    }
}

/// How an age identity (a private key) begins.
const AGE_SECRET_PREFIX: &str = "AGE-SECRET-KEY-";

/// Known secret values (the configured tokens, keys and database passwords): redacted wherever
/// they appear, a remote service's error body echoing one back included.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    /// Longest first, so a secret containing another is redacted whole.
    values: Vec<String>,
}

impl Secrets {
    /// Shorter values are not treated as secrets: `***` in place of every "admin" or "1234"
    /// would hide more than it protects.
    pub const MIN_LEN: usize = 6;

    /// The secrets among `values` (raw variable values). A URL's or connection string's secret
    /// is its password (however the URL is written) and its secret query values, not the URL:
    /// hosts and endpoints are not secrets, and a URL without a password has none. Any other
    /// value (a token, a key) is a secret whole. Each is known raw and percent-decoded.
    pub fn new(values: impl IntoIterator<Item = String>) -> Secrets {
        let mut out: Vec<String> = Vec::new();
        for v in values {
            let v = v.trim().to_string();
            if v.contains("://") {
                out.extend(url_secrets(&v));
            } else if v.to_ascii_lowercase().contains("password") && v.contains('=') {
                out.extend(conninfo_password(&v));
            } else {
                out.push(percent_decode(&v));
                out.push(v);
            }
        }
        let mut decoded: Vec<String> = out.iter().map(|v| percent_decode(v)).collect();
        out.append(&mut decoded);
        out.retain(|v| v.chars().count() >= Self::MIN_LEN);
        out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        out.dedup();
        Secrets { values: out }
    }

    /// How many values are known.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no value is known.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every URL's password, every `password=`, every age identity and every known
    /// secret value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        // Known values first: a pasted URL's structure is read only after, so a password with
        // spaces or an `@` cannot hide from it by splitting the URL.
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        redact_urls(&out)
    }
}

/// The secrets of `scheme://user:password@host…?password=…`: the password however it is
/// written. With an unescaped `@`, `/`, `#` or `?` in it, a parser may cut it at any of them, so
/// every reading is known: the text between the user's `:` and each `@`, and each part of that
/// on either side of one of those characters (what an error quoting a misread host shows).
/// Secret query values are known too.
fn url_secrets(v: &str) -> Vec<String> {
    let Some((_, rest)) = v.split_once("://") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let user_end = rest.find([':', '@']).unwrap_or(rest.len());
    if rest[user_end..].starts_with(':') {
        let from = user_end + 1;
        for (at, _) in rest.match_indices('@').filter(|(at, _)| *at >= from) {
            let password = &rest[from..at];
            found.push(password.to_string());
            for (cut, c) in password.char_indices() {
                if matches!(c, '@' | '/' | '#' | '?' | ':') {
                    found.push(password[..cut].to_string());
                    found.push(password[cut + c.len_utf8()..].to_string());
                }
            }
        }
    }
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        for kv in query.split('&') {
            if let Some((k, value)) = kv.split_once('=')
                && SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str())
            {
                found.push(value.to_string());
            }
        }
    }
    found
}

/// The value of a connection string's `password=` (quoted or not).
fn conninfo_password(v: &str) -> Vec<String> {
    let lower = v.to_ascii_lowercase();
    let mut found = Vec::new();
    for key in SECRET_KEYS {
        let Some(at) = lower.find(key) else { continue };
        let rest = v[at + key.len()..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let value = match rest.strip_prefix('\'') {
            Some(q) => q.split('\'').next().unwrap_or_default(),
            None => rest.split_whitespace().next().unwrap_or_default(),
        };
        found.push(value.to_string());
    }
    found
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

#[cfg(test)]
mod secrets_tests {
    use super::*;

    #[test]
    fn known_values_are_redacted_wherever_they_appear() {
        let s = Secrets::new([
            "re_live_0123456789".to_string(),
            "postgres://app:p%40ss%2Fw0rd@db:5432/app".to_string(),
            "host=db user=app password='quoted secret' dbname=app".to_string(),
            "short".to_string(),
            "  mtoken-with-spaces-around  ".to_string(),
        ]);
        let text = "Resend said: key re_live_0123456789 invalid;\
                    echo p@ss/w0rd and p%40ss%2Fw0rd; quoted secret; short stays; \
                    bearer mtoken-with-spaces-around.";
        let out = s.redact(text);
        for leaked in [
            "re_live_0123456789",
            "p@ss/w0rd",
            "p%40ss%2Fw0rd",
            "quoted secret",
            "mtoken-with-spaces-around",
        ] {
            assert!(!out.contains(leaked), "{leaked} in {out}");
        }
        assert!(
            out.contains("short stays"),
            "values under {} characters are left: {out}",
            Secrets::MIN_LEN
        );
        // The whole URL, wherever it is pasted, loses its password too.
        assert_eq!(
            s.redact("at postgres://app:p%40ss%2Fw0rd@db:5432/app now"),
            "at postgres://app:***@db:5432/app now"
        );
    }

    #[test]
    fn a_url_without_a_password_is_shown_as_it_is_and_hosts_are_not_secrets() {
        let url = "postgres://app@db.example.com:5432/app?sslmode=require";
        let s = Secrets::new([url.to_string(), "https://r2.example.com".to_string()]);
        assert!(s.is_empty(), "{s:?}");
        let text = format!("Connected to {url} in 3 ms; bucket at https://r2.example.com.");
        assert_eq!(s.redact(&text), text);
        assert_eq!(redact_url(url), url);
        assert_eq!(shown_value(url).as_deref(), Some(url));
        // A token is never shown, whole or decoded.
        assert_eq!(shown_value("re_live_abc%2Fdef"), None);
        let token = Secrets::new(["re_live_abc%2Fdef".to_string()]);
        assert_eq!(
            token.redact("k=re_live_abc/def k=re_live_abc%2Fdef"),
            "k=*** k=***"
        );
    }

    #[test]
    fn a_password_with_an_unescaped_at_is_hidden_whole() {
        let url = "postgres://u:p@ss#w0rd@db.example.com/app";
        let s = Secrets::new([url.to_string()]);
        for text in [
            url.to_string(),
            redact_url(url),
            // What a parser that stops at the first `@` says back.
            "could not translate host name \"ss#w0rd@db.example.com\" to address".to_string(),
        ] {
            let out = s.redact(&text);
            assert!(!out.contains("ss#w0rd"), "{out}");
        }
        assert_eq!(redact_url(url), "postgres://u:***@db.example.com/app");
        assert_eq!(s.redact(url), "postgres://u:***@db.example.com/app");
    }

    #[test]
    fn a_secret_containing_another_is_redacted_whole() {
        let s = Secrets::new(["abcdef".to_string(), "xxabcdefyy".to_string()]);
        assert_eq!(s.redact("k=xxabcdefyy and abcdef"), "k=*** and ***");
    }

    #[test]
    fn age_identities_are_redacted_without_being_configured() {
        let key = "AGE-SECRET-KEY-1QQPRLYW9Z0E8J8EU6XMWMDKX6MHTXSDNYWJRP5E3MFH7Y2GFGQSSRX3AMJ";
        let out = Secrets::default().redact(&format!("identity: {key}\nnext"));
        assert_eq!(out, "identity: AGE-SECRET-KEY-***\nnext");
    }

    /// A password as people write them: with `@:/#%?` and spaces, unescaped or escaped.
    fn password() -> impl proptest::strategy::Strategy<Value = String> {
        "[a-zA-Z0-9@:/#%? ]{6,24}".prop_filter("a password has letters", |p| {
            p.chars().filter(|c| c.is_ascii_alphanumeric()).count() >= 3 && p.trim() == p
        })
    }

    fn encode(p: &str) -> String {
        p.chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' => c.to_string(),
                c => format!("%{:02X}", c as u32),
            })
            .collect()
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        #[test]
        fn no_password_however_written_is_shown(p in password(), escaped in proptest::bool::ANY) {
            let written = if escaped { encode(&p) } else { p.clone() };
            let url = format!("postgres://app:{written}@db.example.com:5432/app");
            let s = Secrets::new([url.clone()]);
            for text in [
                url.clone(),
                format!("connecting to {url} failed: timeout"),
                redact_url(&url),
                format!("password authentication failed (password {p})"),
                format!("shown: {}", shown_value(&url).unwrap_or_default()),
            ] {
                let out = s.redact(&text);
                proptest::prop_assert!(!out.contains(&p), "{p:?} in {out:?}");
                proptest::prop_assert!(!out.contains(&written), "{written:?} in {out:?}");
            }
            // The host and database stay readable.
            let shown = s.redact(&redact_url(&url));
            proptest::prop_assert!(shown.ends_with("@db.example.com:5432/app"), "{shown}");
            proptest::prop_assert!(!shown.contains("***@***"), "{shown}");
        }
    }
}
