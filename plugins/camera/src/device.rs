//! Finding and opening local cameras: `/dev/video*` nodes, opened through
//! nokhwa's V4L2 backend.

use std::path::{Path, PathBuf};

use nokhwa::Camera;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};

use crate::capture::{Grab, Grabbed, Open};
use crate::config::{DeviceSelector, Resolution};
use crate::mode::{Mode, Pixel, choose};

/// Where device nodes live.
const DEV_DIR: &str = "/dev";
/// Where the kernel publishes V4L2 device names.
const SYS_DIR: &str = "/sys/class/video4linux";

/// Pixel formats requested from nokhwa, best first.
const READABLE: [FrameFormat; 6] = [
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
    FrameFormat::GRAY,
];

/// A video device node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The `N` of `/dev/videoN`.
    pub index: u32,
    /// The device node.
    pub path: PathBuf,
    /// The name the driver reports (may be empty).
    pub name: String,
}

/// The `videoN` nodes in `dev`, by index, with their names from `sys`.
pub fn scan(dev: &Path, sys: &Path) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(dev) else {
        return Vec::new();
    };
    let mut found: Vec<Found> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file_name = e.file_name();
            let index = video_index(file_name.to_str()?)?;
            let name = std::fs::read_to_string(sys.join(file_name).join("name"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            Some(Found {
                index,
                path: e.path(),
                name,
            })
        })
        .collect();
    found.sort_by_key(|f| f.index);
    found
}

/// `N` for a file named `videoN`.
fn video_index(file_name: &str) -> Option<u32> {
    let digits = file_name.strip_prefix("video")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What was found, for error messages.
fn listing(found: &[Found]) -> String {
    let all: Vec<String> = found
        .iter()
        .map(|f| {
            if f.name.is_empty() {
                format!("{} ({})", f.index, f.path.display())
            } else {
                format!("{} `{}` ({})", f.index, f.name, f.path.display())
            }
        })
        .collect();
    format!("found {}", all.join(", "))
}

/// The devices `selector` may mean, in the order to try them. Several only
/// for a name, since a USB camera often has a second node for metadata that
/// has the same name but cannot capture.
pub fn candidates<'a>(
    selector: &DeviceSelector,
    found: &'a [Found],
    dev: &Path,
) -> Result<Vec<&'a Found>, String> {
    if found.is_empty() {
        return Err(format!(
            "no video devices found (looked for {}/video*)",
            dev.display()
        ));
    }
    let matches: Vec<&Found> = match selector {
        DeviceSelector::Index(i) => found.iter().filter(|f| f.index == *i).collect(),
        DeviceSelector::Path(p) => {
            let real = std::fs::canonicalize(p)
                .map_err(|e| format!("{}: {e}; {}", p.display(), listing(found)))?;
            let index = real
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(video_index);
            found.iter().filter(|f| Some(f.index) == index).collect()
        }
        DeviceSelector::Name(n) => {
            let n = n.to_lowercase();
            found
                .iter()
                .filter(|f| f.name.to_lowercase().contains(&n))
                .collect()
        }
    };
    if matches.is_empty() {
        let why = match selector {
            DeviceSelector::Index(_) => "no such device",
            DeviceSelector::Path(_) => "not a video device",
            DeviceSelector::Name(_) => "no device name contains it",
        };
        return Err(format!("{why}; {}", listing(found)));
    }
    Ok(matches)
}

/// Opens the configured camera in the best mode it offers.
#[derive(Debug, Clone)]
pub struct DeviceOpener {
    selector: DeviceSelector,
    size: Option<Resolution>,
    fps: f64,
    dev: PathBuf,
    sys: PathBuf,
}

impl DeviceOpener {
    /// An opener for `selector`, capturing at `size` (if set) and at least `fps`.
    pub fn new(selector: DeviceSelector, size: Option<Resolution>, fps: f64) -> Self {
        Self {
            selector,
            size,
            fps,
            dev: PathBuf::from(DEV_DIR),
            sys: PathBuf::from(SYS_DIR),
        }
    }

    /// Opens the camera and starts its stream to prove it is usable, then
    /// closes it again; returns the mode it would capture in.
    pub fn probe(&self) -> Result<Mode, String> {
        self.open().map(|c| c.mode)
    }
}

impl Open for DeviceOpener {
    type Camera = DeviceCamera;

    fn open(&self) -> Result<DeviceCamera, String> {
        let found = scan(&self.dev, &self.sys);
        let cannot = |why: String| format!("cannot open {}: {why}", self.selector);
        let candidates = candidates(&self.selector, &found, &self.dev).map_err(cannot)?;
        let mut errors = Vec::new();
        for f in candidates {
            match open_node(f.index, self.size, self.fps) {
                Ok(camera) => return Ok(camera),
                Err(e) if f.name.is_empty() => errors.push(format!("{}: {e}", f.path.display())),
                Err(e) => errors.push(format!("{} (`{}`): {e}", f.path.display(), f.name)),
            }
        }
        Err(cannot(errors.join("; ")))
    }
}

/// Opens `/dev/video<index>`, picks its mode and starts streaming.
fn open_node(index: u32, size: Option<Resolution>, fps: f64) -> Result<DeviceCamera, String> {
    let any = RequestedFormat::with_formats(RequestedFormatType::None, &READABLE);
    let mut camera = Camera::with_backend(CameraIndex::Index(index), any, ApiBackend::Video4Linux)
        .map_err(|e| match e {
            nokhwa::NokhwaError::GetPropertyError { property, .. }
                if property == "CameraFormat" =>
            {
                "it offers no format Sluice reads (MJPEG, YUYV, NV12, RGB, BGR or GRAY)".to_owned()
            }
            e => e.to_string(),
        })?;
    let offered: Vec<Mode> = camera
        .compatible_camera_formats()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(to_mode)
        .collect();
    let mode = choose(&offered, size, fps)?;
    let format = from_pixel(mode.pixel);
    let wanted = [format];
    let exact = CameraFormat::new_from(mode.size.width, mode.size.height, format, mode.fps);
    camera
        .set_camera_requset(RequestedFormat::with_formats(
            RequestedFormatType::Exact(exact),
            &wanted,
        ))
        .map_err(|e| format!("setting {mode}: {e}"))?;
    // What the driver settled on, which is what the buffers will hold.
    let mode = to_mode(camera.camera_format()).unwrap_or(mode);
    camera.open_stream().map_err(|e| e.to_string())?;
    Ok(DeviceCamera { camera, mode })
}

fn to_mode(f: CameraFormat) -> Option<Mode> {
    let pixel = match f.format() {
        FrameFormat::MJPEG => Pixel::Mjpeg,
        FrameFormat::YUYV => Pixel::Yuyv,
        FrameFormat::NV12 => Pixel::Nv12,
        FrameFormat::RAWRGB => Pixel::Rgb,
        FrameFormat::RAWBGR => Pixel::Bgr,
        FrameFormat::GRAY => Pixel::Gray,
    };
    Some(Mode {
        size: Resolution::new(f.width(), f.height()).ok()?,
        pixel,
        fps: f.frame_rate(),
    })
}

fn from_pixel(p: Pixel) -> FrameFormat {
    match p {
        Pixel::Mjpeg => FrameFormat::MJPEG,
        Pixel::Yuyv => FrameFormat::YUYV,
        Pixel::Nv12 => FrameFormat::NV12,
        Pixel::Rgb => FrameFormat::RAWRGB,
        Pixel::Bgr => FrameFormat::RAWBGR,
        Pixel::Gray => FrameFormat::GRAY,
    }
}

/// An open, streaming camera. Lives on the capture thread: nokhwa's camera
/// is not `Send`.
pub struct DeviceCamera {
    camera: Camera,
    mode: Mode,
}

impl Grab for DeviceCamera {
    fn mode(&self) -> Mode {
        self.mode
    }

    fn grab(&mut self) -> Result<Grabbed, String> {
        let buffer = self.camera.frame().map_err(|e| e.to_string())?;
        Ok(Grabbed {
            data: buffer.buffer_bytes(),
            captured: buffer.capture_timestamp(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(nodes: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("dev")).unwrap();
        for (node, name) in nodes {
            std::fs::write(root.path().join("dev").join(node), b"").unwrap();
            let sys = root.path().join("sys").join(node);
            std::fs::create_dir_all(&sys).unwrap();
            std::fs::write(sys.join("name"), format!("{name}\n")).unwrap();
        }
        root
    }

    fn pick(root: &Path, selector: DeviceSelector) -> Result<Vec<u32>, String> {
        let (dev, sys) = (root.join("dev"), root.join("sys"));
        let found = scan(&dev, &sys);
        candidates(&selector, &found, &dev).map(|c| c.iter().map(|f| f.index).collect())
    }

    #[test]
    fn scans_video_nodes_in_index_order_with_their_names() {
        let root = machine(&[
            ("video10", "USB Cam"),
            ("video2", "Integrated Camera"),
            ("videodev", ""),
            ("vhci", ""),
        ]);
        let found = scan(&root.path().join("dev"), &root.path().join("sys"));
        let got: Vec<(u32, &str)> = found.iter().map(|f| (f.index, f.name.as_str())).collect();
        assert_eq!(got, [(2, "Integrated Camera"), (10, "USB Cam")]);
    }

    #[test]
    fn no_video_nodes_says_where_it_looked() {
        let root = machine(&[]);
        let e = pick(root.path(), DeviceSelector::Index(0)).unwrap_err();
        assert_eq!(
            e,
            format!(
                "no video devices found (looked for {}/video*)",
                root.path().join("dev").display()
            )
        );
    }

    #[test]
    fn a_missing_index_lists_the_devices_found() {
        let root = machine(&[("video0", "Integrated Camera")]);
        let e = pick(root.path(), DeviceSelector::Index(3)).unwrap_err();
        assert_eq!(
            e,
            format!(
                "no such device; found 0 `Integrated Camera` ({})",
                root.path().join("dev/video0").display()
            )
        );
    }

    #[test]
    fn names_match_case_insensitively_and_every_match_is_a_candidate() {
        let root = machine(&[
            ("video0", "Integrated Camera"),
            ("video1", "Integrated Camera"),
            ("video2", "HD Pro Webcam C920"),
        ]);
        let name = |n: &str| DeviceSelector::Name(n.into());
        assert_eq!(pick(root.path(), name("c920")), Ok(vec![2]));
        assert_eq!(pick(root.path(), name("integrated")), Ok(vec![0, 1]));
        let e = pick(root.path(), name("Logitech")).unwrap_err();
        assert!(
            e.starts_with("no device name contains it; found 0 `Integrated"),
            "{e}"
        );
    }

    #[test]
    fn paths_and_links_resolve_to_their_video_node() {
        let root = machine(&[("video0", "A"), ("video4", "B")]);
        let link = root.path().join("by-id-usb-cam");
        std::os::unix::fs::symlink(root.path().join("dev/video4"), &link).unwrap();
        assert_eq!(pick(root.path(), DeviceSelector::Path(link)), Ok(vec![4]));
        let direct = root.path().join("dev/video0");
        assert_eq!(pick(root.path(), DeviceSelector::Path(direct)), Ok(vec![0]));
        let gone = root.path().join("dev/video9");
        let e = pick(root.path(), DeviceSelector::Path(gone)).unwrap_err();
        assert!(e.contains("No such file or directory"), "{e}");
    }

    /// The real start-up path on a machine without cameras (CI and build
    /// machines): opening gives a clear error instead of hanging or panicking.
    #[test]
    fn opening_without_any_camera_is_a_clear_error() {
        if !scan(Path::new(DEV_DIR), Path::new(SYS_DIR)).is_empty() {
            eprintln!("skipped: this machine has /dev/video* devices");
            return;
        }
        let opener = DeviceOpener::new(DeviceSelector::Index(0), None, 5.0);
        assert_eq!(
            opener.probe().unwrap_err(),
            "cannot open camera 0: no video devices found (looked for /dev/video*)"
        );
    }
}
