//! glibc's allocator settings, applied by re-executing the binary once.
//!
//! glibc gives every thread that allocates under contention an arena of its
//! own (up to 8 per core) and keeps each arena's peak after the memory is
//! freed; it also raises its mmap threshold to the largest block freed, so
//! later large blocks (decoded frames, a detector's feature maps) come from
//! the arenas too. With detection on two workers the demo reached 746 MB
//! peak RSS and kept growing; with at most two arenas and large blocks
//! always mapped and unmapped it peaked at 341 MB.
//!
//! Fixing the mmap threshold also stops glibc from adapting its trim
//! threshold, which then stays at 128 KiB: the heap top was handed back to
//! the kernel after nearly every model run and faulted in again on the next,
//! and anomaly scoring of 1024-row batches ran 1.6x slower. Up to 4 MiB of
//! free memory is therefore kept at the top of a heap.
//!
//! glibc reads these settings (`GLIBC_TUNABLES`) only when a process starts,
//! so `sluice` sets them and executes itself again, same process id and
//! arguments, before doing anything else. It does not when `GLIBC_TUNABLES`
//! or `MALLOC_ARENA_MAX` is already set (the operator's choice wins) or when
//! `SLUICE_MALLOC_TUNING=off`.

/// Environment variable glibc reads its tunables from.
const TUNABLES: &str = "GLIBC_TUNABLES";

/// At most two arenas; blocks of 1 MiB and more mapped on their own, so
/// freeing them returns the memory; up to 4 MiB free kept at a heap's top.
const SETTINGS: &str = "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=1048576:\
                        glibc.malloc.trim_threshold=4194304";

/// Whether the settings should be applied to this process.
fn wanted(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    var(TUNABLES).is_none()
        && var("MALLOC_ARENA_MAX").is_none()
        && var("SLUICE_MALLOC_TUNING").is_none_or(|v| v != "off")
}

/// Re-executes the binary with the settings when they are wanted; returns
/// when they are not, or when executing failed (the process then goes on
/// with glibc's defaults).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    use std::os::unix::process::CommandExt;

    if !wanted(|k| std::env::var_os(k)) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    // `exec` returns only on failure.
    let err = cmd.args(args).env(TUNABLES, SETTINGS).exec();
    eprintln!("note: running with glibc's default allocator settings ({err})");
}

/// Other platforms keep their allocator as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn applies_when_nothing_is_set() {
        assert!(wanted(env(&[])));
        assert!(wanted(env(&[("SLUICE_MALLOC_TUNING", "on")])));
    }

    #[test]
    fn an_operators_setting_or_opt_out_wins() {
        assert!(!wanted(env(&[(TUNABLES, "glibc.malloc.arena_max=4")])));
        assert!(!wanted(env(&[("MALLOC_ARENA_MAX", "8")])));
        assert!(!wanted(env(&[("SLUICE_MALLOC_TUNING", "off")])));
    }

    #[test]
    fn the_settings_are_glibc_tunables() {
        for part in SETTINGS.split(':') {
            let (name, value) = part.split_once('=').unwrap_or_default();
            assert!(name.starts_with("glibc.malloc."), "{part}");
            assert!(value.parse::<u64>().is_ok(), "{part}");
        }
    }
}
