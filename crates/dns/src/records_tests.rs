//! Unit tests for parsing and looking up the records file.
use super::*;

fn parse(text: &str) -> Result<Records, RecordsError> {
    Records::parse(Path::new("/run/net/dns.json"), text.as_bytes())
}

#[test]
fn parses_the_engine_format() {
    let records = parse(
        r#"{"listen": "10.89.0.1", "port": 5353, "upstreams": ["10.255.255.53:53", "10.0.0.1"],
            "records": [{"names": ["Web", "web-alias.", "3f2a1b4c5d6e"], "ip": "10.89.0.2"},
                        {"names": ["db"], "ip": "fd00::3"}]}"#,
    )
    .unwrap();
    assert_eq!(records.listen(), "10.89.0.1:5353".parse().unwrap());
    assert_eq!(
        records.upstreams(),
        [
            "10.255.255.53:53".parse().unwrap(),
            "10.0.0.1:53".parse().unwrap()
        ]
    );
    let web: IpAddr = "10.89.0.2".parse().unwrap();
    assert_eq!(records.addresses("web"), Some(&[web][..]));
    assert_eq!(records.addresses("web-alias"), Some(&[web][..]));
    assert_eq!(records.addresses("3f2a1b4c5d6e"), Some(&[web][..]));
    assert_eq!(records.addresses("Web"), None, "keys are lower case");
    assert_eq!(records.addresses("other"), None);
    assert_eq!(records.name_of(web), Some("web"));
    assert_eq!(records.name_of("fd00::3".parse().unwrap()), Some("db"));
    assert_eq!(records.name_of("10.89.0.9".parse().unwrap()), None);
}

#[test]
fn port_defaults_to_53_and_upstreams_to_none() {
    let records = parse(r#"{"listen": "10.89.0.1", "records": []}"#).unwrap();
    assert_eq!(records.listen(), "10.89.0.1:53".parse().unwrap());
    assert!(records.upstreams().is_empty());
}

#[test]
fn a_shared_name_collects_every_address_once() {
    let records = parse(
        r#"{"listen": "10.89.0.1", "records": [
            {"names": ["svc", "a"], "ip": "10.89.0.2"},
            {"names": ["svc", "b"], "ip": "10.89.0.3"},
            {"names": ["SVC"], "ip": "10.89.0.3"}]}"#,
    )
    .unwrap();
    let ips: Vec<IpAddr> = ["10.89.0.2", "10.89.0.3"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(records.addresses("svc"), Some(&ips[..]));
    // The reverse name is the first name of the first record with the address.
    assert_eq!(records.name_of(ips[1]), Some("svc"));
}

fn invalid_field(text: &str) -> (String, String) {
    match parse(text) {
        Err(RecordsError::Invalid { field, value, .. }) => (field, value),
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[test]
fn bad_values_name_field_and_value() {
    let (field, value) = invalid_field(r#"{"listen": "10.89.0", "records": []}"#);
    assert_eq!((field.as_str(), value.as_str()), ("listen", "10.89.0"));
    let (field, _) = invalid_field(r#"{"listen": "10.89.0.1", "port": 0, "records": []}"#);
    assert_eq!(field, "port");
    let (field, value) =
        invalid_field(r#"{"listen": "::1", "upstreams": ["8.8.8.8", "dns"], "records": []}"#);
    assert_eq!((field.as_str(), value.as_str()), ("upstreams[1]", "dns"));
    let (field, value) = invalid_field(
        r#"{"listen": "::1", "records": [{"names": ["ok"], "ip": "1.2.3.4"},
            {"names": ["fine", "bad name"], "ip": "1.2.3.5"}]}"#,
    );
    assert_eq!(
        (field.as_str(), value.as_str()),
        ("records[1].names[1]", "bad name")
    );
    let (field, value) =
        invalid_field(r#"{"listen": "::1", "records": [{"names": ["x"], "ip": "web"}]}"#);
    assert_eq!((field.as_str(), value.as_str()), ("records[0].ip", "web"));
    let message = parse(r#"{"listen": "::1", "records": [{"names": [""], "ip": "1.2.3.4"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(message.contains("/run/net/dns.json"), "{message}");
    assert!(message.contains("records[0].names[0]"), "{message}");
    assert!(message.contains("expected a DNS name"), "{message}");
}

#[test]
fn structural_errors_name_the_json_path() {
    match parse(r#"{"listen": "::1", "records": [{"names": "web", "ip": "1.2.3.4"}]}"#) {
        Err(RecordsError::Syntax { field, .. }) => assert_eq!(field, "records[0].names"),
        other => panic!("expected a syntax error, got {other:?}"),
    }
    match parse(r#"{"records": []}"#) {
        Err(RecordsError::Syntax { field, message, .. }) => {
            assert_eq!(field, "(top level)");
            assert!(message.contains("listen"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert!(matches!(
        parse("not json"),
        Err(RecordsError::Syntax { .. })
    ));
}

#[test]
fn names_are_normalized_or_refused() {
    assert_eq!(normalize_name("Web.Example."), Some("web.example".into()));
    assert_eq!(normalize_name("my_db-1"), Some("my_db-1".into()));
    for bad in ["", ".", "a..b", "a b", "é", &"x".repeat(64), "a.", "a.."] {
        let expected = (bad == "a.").then(|| "a".to_string());
        assert_eq!(normalize_name(bad), expected, "{bad:?}");
    }
    let long = ["a"; 127].join(".");
    assert_eq!(long.len(), 253);
    assert!(normalize_name(&long).is_some());
    assert!(normalize_name(&format!("{long}a")).is_none());
}
