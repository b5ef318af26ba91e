use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use sluice_core::{EnvString, HumanDuration};

use super::*;
use crate::parse::tree::parse;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct Conn {
    url: String,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    qos: Option<u8>,
    #[serde(default)]
    window: Option<Window>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    client_id: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct Window {
    every: HumanDuration,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    AtLeastOnce,
    Tumbling(HumanDuration),
}

fn load<T: for<'de> Deserialize<'de>>(yaml: &str) -> Result<T, Error> {
    let doc = parse(yaml).unwrap();
    from_node(&doc)
}

fn err_at<T: for<'de> Deserialize<'de> + fmt::Debug>(yaml: &str) -> (u64, u64, String) {
    let e = load::<T>(yaml).unwrap_err();
    let pos = e.pos.unwrap();
    (pos.line, pos.column, e.message)
}

#[test]
fn deserializes_nested_structs_lists_options_and_enums() {
    let c: Conn = load(
        "url: mqtt://h\ntopics: [a/#, b]\nqos: 1\nwindow: { every: 10s }\nmode: at_least_once\n",
    )
    .unwrap();
    assert_eq!(c.topics, ["a/#", "b"]);
    assert_eq!(c.qos, Some(1));
    assert_eq!(c.window.unwrap().every.0.as_secs(), 10);
    assert_eq!(c.mode, Some(Mode::AtLeastOnce));
}

#[test]
fn newtype_enum_variant_reads_a_single_key_map() {
    let c: Conn = load("url: u\nmode: { tumbling: 5s }\n").unwrap();
    assert_eq!(
        c.mode,
        Some(Mode::Tumbling(HumanDuration(
            std::time::Duration::from_secs(5)
        )))
    );
}

#[test]
fn unknown_field_points_at_the_key() {
    let (line, col, msg) = err_at::<Conn>("url: u\n  \ntopcs: [a]\n");
    assert_eq!((line, col), (3, 1));
    assert!(
        msg.starts_with("unknown field `topcs`, expected one of `url`, `topics`"),
        "{msg}"
    );
}

#[test]
fn missing_field_points_at_the_map() {
    let (line, col, msg) = err_at::<BTreeMap<String, Conn>>("a:\n  url: u\nb:\n  topics: [x]\n");
    assert_eq!((line, col), (4, 3));
    assert_eq!(msg, "missing field `url`");
}

#[test]
fn wrong_type_points_at_the_value() {
    let (line, col, msg) = err_at::<Conn>("url: u\nqos: high\n");
    assert_eq!((line, col), (2, 6));
    assert!(msg.contains("invalid type: string \"high\""), "{msg}");
    let (line, col, _) = err_at::<Conn>("url: u\ntopics:\n  - a\n  - [b]\n");
    assert_eq!((line, col), (4, 5));
}

#[test]
fn custom_value_errors_point_at_the_value() {
    let (line, col, msg) = err_at::<Conn>("url: u\nwindow:\n  every: 10 sec\n");
    assert_eq!((line, col), (3, 10));
    assert!(msg.contains("invalid duration `10 sec`"), "{msg}");
}

#[test]
fn unknown_enum_variant_points_at_the_value_and_is_recognisable() {
    let e = load::<Conn>("url: u\nmode: exactly_once\n").unwrap_err();
    assert_eq!(e.pos, Some(Pos::new(2, 7)));
    assert_eq!(e.unknown_variant.unwrap().found, "exactly_once");
}

#[test]
fn unset_environment_variable_points_at_the_value() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Secret {
        password: EnvString,
    }
    let (line, col, msg) = err_at::<Secret>("password: \"${SLUICE_TEST_SURELY_UNSET_VARIABLE}\"\n");
    assert_eq!((line, col), (1, 11));
    assert!(
        msg.contains("`SLUICE_TEST_SURELY_UNSET_VARIABLE` is not set"),
        "{msg}"
    );
}

#[test]
fn strings_asked_of_plain_numbers_get_the_written_text() {
    let c: Conn = load("url: 1883\nclient_id: 007\n").unwrap();
    assert_eq!(c.url, "1883");
    assert_eq!(c.client_id.as_deref(), Some("007"));
}

#[test]
fn deserialize_any_picks_the_natural_type() {
    let v: BTreeMap<String, serde_json::Value> =
        load("i: 3\nn: -2\nf: 2.5\nb: false\ns: \"3\"\nz: ~\nl: [1, x]\n").unwrap();
    assert_eq!(
        serde_json::Value::Object(v.into_iter().collect()),
        serde_json::json!({
            "i": 3, "n": -2, "f": 2.5, "b": false, "s": "3", "z": null, "l": [1, "x"]
        })
    );
}

/// The catalog's technique: read `type` first, then hand the same map on.
#[derive(Debug)]
struct Typed(Conn);

impl<'de> Deserialize<'de> for Typed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Typed;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a component")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Typed, A::Error> {
                match map.next_key::<String>()?.as_deref() {
                    Some("type") => {}
                    Some(k) => {
                        return Err(de::Error::custom(format!(
                            "`type` must be the first key, found `{k}`"
                        )));
                    }
                    None => return Err(de::Error::missing_field("type")),
                }
                let kind: String = map.next_value()?;
                let rest = MapAccessDeserializer::new(map);
                match kind.as_str() {
                    "mqtt" => Conn::deserialize(rest).map(Typed),
                    other => Err(de::Error::unknown_variant(other, &["mqtt"])),
                }
            }
        }
        d.deserialize_map(V)
    }
}

#[test]
fn type_first_visitor_keeps_exact_locations_through_map_access_deserializer() {
    let t: Typed = load("type: mqtt\nurl: u\n").unwrap();
    assert_eq!(t.0.url, "u");
    assert_eq!(err_at::<Typed>("type: mqtt\nurl: u\ntopcs: []\n").0, 3);
    let (line, col, msg) = err_at::<Typed>("\ntype: mqtt\ntopics: []\n");
    assert_eq!((line, col), (2, 1));
    assert_eq!(msg, "missing field `url`");
}

#[test]
fn unknown_type_points_at_the_type_value() {
    let e = load::<Typed>("type: kafka\nurl: u\n").unwrap_err();
    assert_eq!(e.pos, Some(Pos::new(1, 7)));
    assert_eq!(e.unknown_variant.unwrap().expected, ["mqtt"]);
}

#[test]
fn type_not_first_points_at_the_first_key() {
    let (line, col, msg) = err_at::<Typed>("url: u\ntype: mqtt\n");
    assert_eq!((line, col), (1, 1));
    assert_eq!(msg, "`type` must be the first key, found `url`");
}

#[test]
fn empty_component_reports_missing_type_at_the_map() {
    let (line, col, msg) = err_at::<BTreeMap<String, Typed>>("a:\n  {}\n");
    assert_eq!((line, col), (2, 3));
    assert_eq!(msg, "missing field `type`");
}
