//! Deserialisation that reads `type` first and hands the *same* map stream to
//! the concrete config, so every error keeps its exact location.

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::{
    AnySinkConfig, AnySourceConfig, AnyTransformConfig, SINK_KINDS, SOURCE_KINDS, TRANSFORM_KINDS,
};

/// Reads the leading `type` key of a component map.
fn read_type<'de, A: MapAccess<'de>>(map: &mut A) -> Result<String, A::Error> {
    match map.next_key::<String>()?.as_deref() {
        Some("type") => map.next_value(),
        Some(k) => Err(de::Error::custom(format!(
            "`type` must be the first key, found `{k}`"
        ))),
        None => Err(de::Error::missing_field("type")),
    }
}

macro_rules! type_first_visitor {
    ($ty:ident, $role:literal, $kinds:ident, { $($name:literal => $variant:ident($cfg:ty)),+ $(,)? }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a {} with a `type` key", $role)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        let kind = read_type(&mut map)?;
                        let rest = MapAccessDeserializer::new(map);
                        match kind.as_str() {
                            $($name => <$cfg>::deserialize(rest).map($ty::$variant),)+
                            other => Err(de::Error::unknown_variant(other, $kinds)),
                        }
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

type_first_visitor!(AnySourceConfig, "source", SOURCE_KINDS, {
    "mqtt" => Mqtt(sluice_plugin_mqtt::MqttSourceConfig),
    "frames" => Frames(sluice_plugin_vision::FramesConfig),
    "camera" => Camera(sluice_plugin_camera::CameraConfig),
});

type_first_visitor!(AnyTransformConfig, "transform", TRANSFORM_KINDS, {
    "sql" => Sql(sluice_plugin_sql::SqlConfig),
    "filter" => Filter(sluice_plugin_sql::FilterConfig),
    "anomaly" => Anomaly(sluice_plugin_onnx::AnomalyConfig),
    "summarize" => Summarize(sluice_plugin_summarize::SummarizeConfig),
    "detect" => Detect(sluice_plugin_vision::DetectConfig),
    "track" => Track(sluice_plugin_vision::TrackConfig),
    "zones" => Zones(sluice_plugin_vision::ZonesConfig),
});

type_first_visitor!(AnySinkConfig, "sink", SINK_KINDS, {
    "mqtt" => Mqtt(sluice_plugin_mqtt::MqttSinkConfig),
    "file" => File(sluice_plugin_io::FileSinkConfig),
    "console" => Console(sluice_plugin_io::ConsoleSinkConfig),
});
