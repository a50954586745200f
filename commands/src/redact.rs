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

/// One URL with the password in its user info and secret query values replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
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

/// Every URL inside free text redacted (notes and titles may carry pasted connection strings).
pub fn redact_urls(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut first = true;
    for piece in text.split(' ') {
        if !first {
            out.push(' ');
        }
        first = false;
        if piece.contains("://") {
            out.push_str(&redact_url(piece));
        } else {
            out.push_str(piece);
        }
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
}
