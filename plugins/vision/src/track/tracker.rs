//! A light multi-object tracker in the spirit of SORT: each track predicts
//! its box with a constant velocity, detections are matched to predictions
//! greedily by IoU within a class, unmatched detections start new tracks and
//! tracks unseen for `max_age` of event time end. Ids are never reused.

use std::collections::HashMap;

use crate::detect::BBox;

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerParams {
    /// Lowest IoU between a prediction and a detection to match them.
    pub iou_threshold: f32,
    /// A track without a match for this long (event time, ms) ends.
    pub max_age_ms: i64,
    /// Weight of the newest motion in the velocity estimate (0..1).
    pub smoothing: f32,
}

/// One detection handed to the tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Class id.
    pub class: i64,
    /// Box in frame pixels.
    pub bbox: BBox,
}

#[derive(Debug, Clone)]
struct Track {
    id: i64,
    class: i64,
    bbox: BBox,
    /// Pixels per millisecond of the box centre.
    vx: f32,
    vy: f32,
    last_ms: i64,
}

impl Track {
    fn predict(&self, ts: i64) -> BBox {
        let dt = (ts - self.last_ms).max(0) as f32;
        let (dx, dy) = (self.vx * dt, self.vy * dt);
        BBox {
            x1: self.bbox.x1 + dx,
            y1: self.bbox.y1 + dy,
            x2: self.bbox.x2 + dx,
            y2: self.bbox.y2 + dy,
        }
    }
}

fn centre(b: &BBox) -> (f32, f32) {
    ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0)
}

/// Tracks of one camera.
#[derive(Debug, Clone)]
pub struct Tracker {
    params: TrackerParams,
    tracks: Vec<Track>,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(params: TrackerParams) -> Self {
        Self {
            params,
            tracks: Vec::new(),
        }
    }

    /// Number of live tracks.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether no track is live.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Ends tracks unseen since `ts - max_age`.
    pub fn expire(&mut self, ts: i64) {
        let max_age = self.params.max_age_ms;
        self.tracks.retain(|t| ts - t.last_ms <= max_age);
    }

    /// Assigns a track id to each observation of one frame at `ts`, in order;
    /// new tracks take ids from `next_id`.
    pub fn update(&mut self, ts: i64, obs: &[Observation], next_id: &mut i64) -> Vec<i64> {
        self.expire(ts);
        let predicted: Vec<BBox> = self.tracks.iter().map(|t| t.predict(ts)).collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (oi, o) in obs.iter().enumerate() {
                if o.class != t.class {
                    continue;
                }
                let iou = predicted[ti].iou(&o.bbox);
                if iou >= self.params.iou_threshold {
                    pairs.push((iou, ti, oi));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut ids: Vec<Option<i64>> = vec![None; obs.len()];
        let mut used = vec![false; self.tracks.len()];
        for (_, ti, oi) in pairs {
            if used[ti] || ids[oi].is_some() {
                continue;
            }
            used[ti] = true;
            let t = &mut self.tracks[ti];
            let dt = (ts - t.last_ms).max(1) as f32;
            let ((ox, oy), (nx, ny)) = (centre(&t.bbox), centre(&obs[oi].bbox));
            let a = self.params.smoothing;
            t.vx = (1.0 - a) * t.vx + a * (nx - ox) / dt;
            t.vy = (1.0 - a) * t.vy + a * (ny - oy) / dt;
            t.bbox = obs[oi].bbox;
            t.last_ms = ts;
            ids[oi] = Some(t.id);
        }
        ids.iter()
            .zip(obs)
            .map(|(id, o)| match id {
                Some(id) => *id,
                None => {
                    let id = *next_id;
                    *next_id += 1;
                    self.tracks.push(Track {
                        id,
                        class: o.class,
                        bbox: o.bbox,
                        vx: 0.0,
                        vy: 0.0,
                        last_ms: ts,
                    });
                    id
                }
            })
            .collect()
    }
}

/// Trackers per camera, sharing one id counter so ids are unique across
/// cameras.
#[derive(Debug)]
pub struct Trackers {
    params: TrackerParams,
    by_camera: HashMap<String, Tracker>,
    next_id: i64,
}

impl Trackers {
    /// No tracks yet; the first id is 1.
    pub fn new(params: TrackerParams) -> Self {
        Self {
            params,
            by_camera: HashMap::new(),
            next_id: 1,
        }
    }

    /// Track ids for one frame of `camera` at `ts`.
    pub fn update(&mut self, camera: &str, ts: i64, obs: &[Observation]) -> Vec<i64> {
        let params = self.params;
        let tracker = match self.by_camera.get_mut(camera) {
            Some(t) => t,
            None => self
                .by_camera
                .entry(camera.to_owned())
                .or_insert_with(|| Tracker::new(params)),
        };
        tracker.update(ts, obs, &mut self.next_id)
    }

    /// Live tracks over all cameras.
    pub fn live(&self) -> usize {
        self.by_camera.values().map(Tracker::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> TrackerParams {
        TrackerParams {
            iou_threshold: 0.3,
            max_age_ms: 1000,
            smoothing: 0.5,
        }
    }

    fn person(x: f32) -> Observation {
        Observation {
            class: 0,
            bbox: BBox {
                x1: x,
                y1: 100.0,
                x2: x + 40.0,
                y2: 200.0,
            },
        }
    }

    #[test]
    fn keeps_ids_of_two_people_walking_towards_each_other() {
        let (mut t, mut next) = (Tracker::new(params()), 1);
        let mut seen = Vec::new();
        // A walks right from x=0, B walks left from x=400, 10 px per 100 ms
        // frame; they pass each other around frame 20.
        for f in 0..30 {
            let (a, b) = (person(10.0 * f as f32), person(400.0 - 10.0 * f as f32));
            let ids = t.update(f * 100, &[a, b], &mut next);
            seen.push(ids);
        }
        let (a_ids, b_ids): (Vec<i64>, Vec<i64>) = seen.iter().map(|v| (v[0], v[1])).unzip();
        // The predicted motion keeps them apart while their boxes overlap.
        assert!(a_ids.iter().all(|id| *id == 1), "{a_ids:?}");
        assert!(b_ids.iter().all(|id| *id == 2), "{b_ids:?}");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_track_survives_a_missed_frame_but_not_a_long_absence() {
        let (mut t, mut next) = (Tracker::new(params()), 1);
        assert_eq!(t.update(0, &[person(0.0)], &mut next), [1]);
        assert_eq!(t.update(100, &[], &mut next), Vec::<i64>::new());
        assert_eq!(t.update(200, &[person(10.0)], &mut next), [1]);
        assert_eq!(t.update(5000, &[person(10.0)], &mut next), [2]);
    }

    #[test]
    fn different_classes_never_share_a_track() {
        let (mut t, mut next) = (Tracker::new(params()), 1);
        t.update(0, &[person(0.0)], &mut next);
        let bag = Observation {
            class: 26,
            ..person(0.0)
        };
        assert_eq!(t.update(100, &[bag], &mut next), [2]);
    }

    #[test]
    fn ids_are_unique_across_cameras() {
        let mut all = Trackers::new(params());
        let a = all.update("a", 0, &[person(0.0)]);
        let b = all.update("b", 0, &[person(0.0)]);
        assert_ne!(a, b);
        assert_eq!(all.live(), 2);
    }
}
