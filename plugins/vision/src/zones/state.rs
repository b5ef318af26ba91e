//! What the `zones` transform remembers per tracked object, and the events
//! it derives from each new position.

use std::collections::HashMap;

use super::config::{EventKind, When};
use super::geometry::{Point, crosses, inside, side};
use super::schedule::Hours;

/// One output event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Camera.
    pub camera: String,
    /// Event time, ms.
    pub ts: i64,
    /// Zone or line name.
    pub zone: String,
    /// `enter`, `exit`, `dwell` or `line_cross`.
    pub event: &'static str,
    /// Track.
    pub track_id: i64,
    /// Class name.
    pub class: String,
    /// Detection score.
    pub score: f64,
    /// Line crossings: `left_to_right` or `right_to_left`.
    pub direction: Option<&'static str>,
    /// Time inside, for `dwell` and `exit`.
    pub dwell_seconds: Option<f64>,
    /// Whether the store was closed, when a schedule is set.
    pub after_hours: Option<bool>,
    /// Anchor point.
    pub point: Point,
    /// Path of the thumbnail of the sighting, or of the newest earlier one
    /// of the same track.
    pub thumbnail: Option<String>,
}

/// A zone rule, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Zone {
    pub(super) name: String,
    pub(super) camera: String,
    pub(super) polygon: Vec<Point>,
    pub(super) events: Vec<EventKind>,
    pub(super) dwell_ms: Option<i64>,
    pub(super) classes: Vec<String>,
    pub(super) when: When,
}

/// A line rule, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Line {
    pub(super) name: String,
    pub(super) camera: String,
    pub(super) from: Point,
    pub(super) to: Point,
    pub(super) classes: Vec<String>,
    pub(super) when: When,
}

/// One position of a tracked object.
#[derive(Debug, Clone)]
pub struct Sighting {
    /// Camera.
    pub camera: String,
    /// Time, ms.
    pub ts: i64,
    /// Track.
    pub track_id: i64,
    /// Class name.
    pub class: String,
    /// Detection score.
    pub score: f64,
    /// Anchor point.
    pub point: Point,
    /// Path of a thumbnail of the frame, when one was kept.
    pub thumbnail: Option<String>,
}

#[derive(Debug, Clone)]
struct Track {
    last: Sighting,
    /// Per zone index: when the current visit started and whether its
    /// `dwell` was reported.
    visits: HashMap<usize, (i64, bool)>,
}

/// Rules and per-track state.
#[derive(Debug)]
pub struct ZoneState {
    zones: Vec<Zone>,
    lines: Vec<Line>,
    hours: Option<Hours>,
    tracks: HashMap<i64, Track>,
}

fn allowed(classes: &[String], class: &str) -> bool {
    classes.is_empty() || classes.iter().any(|c| c == class)
}

impl ZoneState {
    /// No tracks yet.
    pub fn new(zones: Vec<Zone>, lines: Vec<Line>, hours: Option<Hours>) -> Self {
        Self {
            zones,
            lines,
            hours,
            tracks: HashMap::new(),
        }
    }

    /// Tracked objects remembered.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether no object is remembered.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    fn event(&self, s: &Sighting, zone: &str, event: &'static str, when: When) -> Option<Event> {
        let after = self.hours.map(|h| h.after_hours(s.ts));
        let report = match when {
            When::Always => true,
            When::AfterHours => after == Some(true),
            When::OpenHours => after == Some(false),
        };
        report.then(|| Event {
            camera: s.camera.clone(),
            ts: s.ts,
            zone: zone.to_owned(),
            event,
            track_id: s.track_id,
            class: s.class.clone(),
            score: s.score,
            direction: None,
            dwell_seconds: None,
            after_hours: after,
            point: s.point,
            thumbnail: s.thumbnail.clone(),
        })
    }

    /// Updates the object's state with a new position; pushes the events.
    /// A sighting without a thumbnail takes the newest one of its track.
    pub fn observe(&mut self, mut s: Sighting, out: &mut Vec<Event>) {
        let mut track = self.tracks.remove(&s.track_id).unwrap_or_else(|| Track {
            last: s.clone(),
            visits: HashMap::new(),
        });
        if s.thumbnail.is_none() {
            s.thumbnail.clone_from(&track.last.thumbnail);
        }
        let prev =
            (track.last.ts < s.ts || track.last.point != s.point).then_some(track.last.point);
        for (zi, z) in self.zones.iter().enumerate() {
            if z.camera != s.camera || !allowed(&z.classes, &s.class) {
                continue;
            }
            let now_inside = inside(&z.polygon, s.point);
            match (track.visits.get(&zi).copied(), now_inside) {
                (None, true) => {
                    track.visits.insert(zi, (s.ts, false));
                    if z.events.contains(&EventKind::Enter) {
                        out.extend(self.event(&s, &z.name, "enter", z.when));
                    }
                }
                (Some((since, done)), true) => {
                    if let Some(d) = z.dwell_ms
                        && !done
                        && s.ts - since >= d
                    {
                        track.visits.insert(zi, (since, true));
                        if z.events.contains(&EventKind::Dwell) {
                            let e = self.event(&s, &z.name, "dwell", z.when);
                            out.extend(e.map(|e| Event {
                                dwell_seconds: Some((s.ts - since) as f64 / 1000.0),
                                ..e
                            }));
                        }
                    }
                }
                (Some((since, _)), false) => {
                    track.visits.remove(&zi);
                    if z.events.contains(&EventKind::Exit) {
                        let e = self.event(&s, &z.name, "exit", z.when);
                        out.extend(e.map(|e| Event {
                            dwell_seconds: Some((s.ts - since) as f64 / 1000.0),
                            ..e
                        }));
                    }
                }
                (None, false) => {}
            }
        }
        if let Some(p) = prev {
            for l in &self.lines {
                if l.camera != s.camera
                    || !allowed(&l.classes, &s.class)
                    || !crosses(l.from, l.to, p, s.point)
                {
                    continue;
                }
                let direction = if side(l.from, l.to, p) < 0.0 {
                    "left_to_right"
                } else {
                    "right_to_left"
                };
                let e = self.event(&s, &l.name, "line_cross", l.when);
                out.extend(e.map(|e| Event {
                    direction: Some(direction),
                    ..e
                }));
            }
        }
        track.last = s;
        self.tracks.insert(track.last.track_id, track);
    }

    /// Forgets objects of `camera` (every camera when `None`) last seen
    /// before `cutoff`; each open visit ends with an `exit` at the last sighting.
    pub fn expire(&mut self, camera: Option<&str>, cutoff: i64, out: &mut Vec<Event>) {
        let gone: Vec<i64> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.last.ts < cutoff && camera.is_none_or(|c| c == t.last.camera))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            let Some(t) = self.tracks.remove(&id) else {
                continue;
            };
            let mut visits: Vec<(usize, i64)> = t
                .visits
                .iter()
                .map(|(z, (since, _))| (*z, *since))
                .collect();
            visits.sort_unstable();
            for (zi, since) in visits {
                let z = &self.zones[zi];
                if z.events.contains(&EventKind::Exit) {
                    let e = self.event(&t.last, &z.name, "exit", z.when);
                    out.extend(e.map(|e| Event {
                        dwell_seconds: Some((t.last.ts - since) as f64 / 1000.0),
                        ..e
                    }));
                }
            }
        }
    }
}
