//! `type: zones`: events when tracked objects enter, leave or stay in
//! polygons, or cross lines, with opening-hours rules.
//!
//! ```yaml
//! restricted:
//!   type: zones
//!   inputs: [tracked]
//!   schedule: { open: "08:00", close: "21:00", utc_offset: "+01:00" }
//!   zones:
//!     - { name: stockroom, camera: back, polygon: [[0, 0], [300, 0], [300, 480], [0, 480]],
//!         when: after_hours }
//!     - { name: exit, camera: door, polygon: [[400, 200], [640, 200], [640, 480], [400, 480]],
//!         events: [dwell], dwell: 20s }
//!   lines:
//!     - { name: door, camera: door, from: [320, 0], to: [320, 480] }
//! ```
//!
//! The anchor of a box (default: the middle of its bottom edge, where a person
//! stands) is tested against each zone and line of its camera. Output: one
//! row per event with `camera`, `ts`, `zone`, `event` (`enter`, `exit`,
//! `dwell`, `line_cross`), `track_id`, `class`, `score`, `direction` (line
//! crossings), `dwell_seconds` (`dwell` and `exit`), `after_hours` (null
//! without a schedule) and the anchor `x`, `y`. An object not seen for
//! `lost_after` (event time) while its camera reports others, or whose camera
//! reports nothing for `idle_after` (wall clock), leaves its zones with an
//! `exit` at its last sighting. When the input has a `thumbnail` column
//! (`detect` with `thumbnails`), events carry it too: the sighting's own, or
//! the newest earlier one of the same track.

mod config;
mod geometry;
mod schedule;
mod state;
mod transform;

#[cfg(test)]
mod tests;

pub use config::{
    Anchor, EventKind, LineConfig, When, ZoneConfig, ZonesConfig, events_schema, output_schema,
};
pub use geometry::{Point, crosses, inside, side};
pub use schedule::{Hours, Schedule};
pub use state::{Event, Sighting, ZoneState};
pub use transform::ZonesTransform;
