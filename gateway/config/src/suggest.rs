//! "Did you mean …?" suggestions for misspelt names.

/// The candidate closest to `name`, if it is close enough to be a likely typo:
/// at most a third of the name's characters (and at least one) edited.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `did you mean `x`?` for the closest candidate.
pub(crate) fn help<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    did_you_mean(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name_for_small_typos() {
        let ids = ["telemetry", "per_device", "cloud"];
        assert_eq!(did_you_mean("telemtry", ids), Some("telemetry"));
        assert_eq!(did_you_mean("per-device", ids), Some("per_device"));
        assert_eq!(did_you_mean("clodu", ids), Some("cloud"));
    }

    #[test]
    fn suggests_nothing_for_unrelated_names() {
        assert_eq!(did_you_mean("vibration", ["telemetry", "cloud"]), None);
        assert_eq!(did_you_mean("ab", ["xy"]), None);
    }
}
