//! Validation: `sluice validate` reports every problem with the config and
//! the model file, with how to fix it, and never panics.

use std::io::Write;

use sluice_core::{TransformConfig, Validator};
use sluice_testkit::TransformHarness;

use super::events;
use super::*;

fn parse(yaml: &str) -> SummarizeConfig {
    serde_saphyr::from_str(yaml).unwrap()
}

#[test]
fn a_missing_model_is_an_error_that_says_how_to_fetch_it() {
    let cfg = parse("inputs: [a]\nmodel: models/slm/not-there.gguf\nevery: 5m\n");
    let e = errors(&cfg);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, vec!["model"]);
    assert!(
        e[0].message.contains("not-there.gguf not found"),
        "{}",
        e[0].message
    );
    assert!(
        e[0].help
            .as_deref()
            .unwrap()
            .contains("models/slm/fetch.sh")
    );
}

#[test]
fn an_unknown_chat_template_is_an_error_and_a_builtin_name_is_not() {
    let cfg = parse(&format!(
        "inputs: [a]\nmodel: {}\nevery: 5m\nchat_template: no-such-template\n",
        model_path().display()
    ));
    let e = errors(&cfg);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, vec!["chat_template"]);
    assert!(
        e[0].message
            .starts_with("chat template `no-such-template`: llama.cpp cannot apply it"),
        "{}",
        e[0].message
    );
    for name in ["chatml", "gemma", "llama3"] {
        let cfg = parse(&format!(
            "inputs: [a]\nmodel: {}\nevery: 5m\nchat_template: {name}\n",
            model_path().display()
        ));
        assert!(errors(&cfg).is_empty(), "{name}");
    }
}

#[test]
fn a_file_that_is_not_gguf_is_an_error() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"<html>not a model</html>").unwrap();
    let cfg = parse(&format!(
        "inputs: [a]\nmodel: {}\nevery: 5m\n",
        f.path().display()
    ));
    let e = errors(&cfg);
    assert!(
        e[0].message.contains("missing the GGUF magic bytes"),
        "{:?}",
        e[0]
    );
}

#[test]
fn a_truncated_gguf_is_an_error_not_a_crash() {
    let model = std::fs::read(model_path()).unwrap();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&model[..4096]).unwrap();
    let cfg = parse(&format!(
        "inputs: [a]\nmodel: {}\nevery: 5m\n",
        f.path().display()
    ));
    let e = errors(&cfg);
    assert!(
        e[0].message.contains("is not a loadable GGUF model"),
        "{:?}",
        e[0]
    );
    let inputs = sluice_core::InputSchema::only(events::schema());
    let Err(err) = TransformHarness::build_as("test", "digest", &cfg, inputs, None) else {
        panic!("a file that is not a model built");
    };
    assert!(err.to_string().contains("component `digest`"), "{err}");
}

#[test]
fn column_settings_are_checked_against_the_input() {
    let cfg = parse(&format!(
        "inputs: [a]\nmodel: {}\nkeys: [device, aisle]\ntime: kind\nmeasures: [zone]\n\
         severity: {{column: nope}}\nprompt: no facts here\n",
        model_path().display()
    ));
    let e = errors(&cfg);
    let msgs: Vec<&str> = e.iter().map(|i| i.message.as_str()).collect();
    assert!(
        msgs.contains(&"set `every`, `max_events` or both: nothing would close a window"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"`aisle` is not a column of the input"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"`kind` is Utf8, expected a timestamp or int64 milliseconds"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"`zone` is Utf8, expected a numeric column"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"`nope` is not a column of the input"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"the prompt must contain `{facts}`"),
        "{msgs:?}"
    );
}

#[test]
fn a_valid_config_yields_the_digest_schema() {
    let cfg = config("every: 5m\n");
    let mut v = Validator::new();
    let schema = cfg
        .check(&sluice_core::InputSchema::only(events::schema()), &mut v)
        .unwrap();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "window_start",
            "window_end",
            "summary",
            "severity",
            "event_count",
            "facts",
            "model",
            "prompt_tokens",
            "generated_tokens",
            "generation_seconds",
            "escalated_summary",
            "escalation_bytes",
            "window_bytes"
        ]
    );
    assert!(v.into_issues().is_empty());
}

#[test]
fn a_bad_escalation_url_is_an_error_at_its_own_path() {
    for (url, says) in [
        ("localhost:8080", "must start with http:// or https://"),
        ("http://host/v1?key=1", "has a query string"),
        ("https://me:pw@host", "carries credentials"),
    ] {
        let cfg = parse(&format!(
            "inputs: [a]\nmodel: {}\nevery: 5m\nescalate: {{url: '{url}'}}\n",
            model_path().display()
        ));
        let e = errors(&cfg);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, vec!["escalate", "url"]);
        assert!(e[0].message.contains(says), "{}", e[0].message);
        assert!(!e[0].message.contains("pw@"), "{}", e[0].message);
    }
    let cfg = parse(&format!(
        "inputs: [a]\nmodel: {}\nevery: 5m\nescalate: {{url: 'http://127.0.0.1:1', \
         api_key_env: SLUICE_TEST_SURELY_UNSET_KEY}}\n",
        model_path().display()
    ));
    let e = errors(&cfg);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, vec!["escalate", "api_key_env"]);
}
