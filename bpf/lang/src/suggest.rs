//! "Did you mean …?" — the closest known name to a misspelt one.

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a plausible typo: at most one edit per three characters (and at
/// least one). Ties go to the earlier candidate.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance between `a` and `b` in characters, counting a swap of two
/// adjacent characters as one edit (optimal string alignment), since
/// swapped letters are the commonest typo (`pdi` for `pid`).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back (for swaps), the previous one and the current one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            row[j] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("trcepoint", "tracepoint"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("pdi", "pid"), 1);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("ca", "abc"), 3);
    }

    #[test]
    fn closest_respects_the_limit() {
        let names = ["tracepoint", "kprobe", "uprobe", "begin"];
        assert_eq!(closest("trcepoint", names), Some("tracepoint"));
        assert_eq!(closest("kprob", names), Some("kprobe"));
        assert_eq!(closest("Begin", names), Some("begin"));
        assert_eq!(closest("xyz", names), None);
    }
}
