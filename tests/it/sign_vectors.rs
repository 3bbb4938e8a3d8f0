//! Every vector in tests/data/sign_vectors.json (copied from shared/tiktok-api).

use serde_json::Value;
use shoplake::api::sign;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sign_vectors.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn request_vectors() {
    let v = vectors();
    let cases = v["vectors"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let secret = c["app_secret"].as_str().unwrap();
        let path = c["path"].as_str().unwrap();
        let query: Vec<(&str, &str)> = c["query"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        let body = c["body"].as_str().unwrap().as_bytes();
        let s2s = sign::string_to_sign(path, query.iter().copied(), body);
        let wrapped = format!("{secret}{}{secret}", String::from_utf8(s2s).unwrap());
        assert_eq!(
            wrapped,
            c["string_to_sign"].as_str().unwrap(),
            "{name}: string to sign"
        );
        let expected = c["expected_sign"].as_str().unwrap();
        assert_eq!(
            sign::sign(secret, path, query.iter().copied(), body),
            expected,
            "{name}"
        );
        assert!(
            sign::verify(secret, path, query.iter().copied(), body, expected),
            "{name}: verify"
        );
        assert!(
            !sign::verify(secret, path, query.iter().copied(), b"x", expected),
            "{name}: body is signed"
        );
    }
}

#[test]
fn webhook_vectors() {
    let v = vectors();
    for c in v["webhook_vectors"].as_array().unwrap() {
        let (key, secret) = (
            c["app_key"].as_str().unwrap(),
            c["app_secret"].as_str().unwrap(),
        );
        let body = c["raw_body"].as_str().unwrap().as_bytes();
        let expected = c["expected_authorization_header"].as_str().unwrap();
        assert_eq!(sign::webhook_signature(key, secret, body), expected);
        assert!(sign::verify_webhook(key, secret, body, expected));
        assert!(!sign::verify_webhook(key, secret, b"{}", expected));
    }
}
