// Regex search over function names.
//
// Matching is per name (the names table is far smaller than the node list),
// then per node through a lookup. The matched share of the profile counts a
// matching node's whole subtree once: inside a match, nested matches (e.g.
// recursion) are skipped, so `walk;walk;walk` is not counted three times.

/**
 * Compiles a search box value. Smart case: case-insensitive unless the query
 * has an upper-case letter. Returns { re } or { error }.
 */
export function compile(q) {
  if (!q) return { re: null };
  try {
    return { re: new RegExp(q, /[A-Z]/.test(q) ? '' : 'i') };
  } catch (e) {
    return { error: e.message.replace(/^Invalid regular expression: /, '') };
  }
}

/** A Uint8Array over `names`: 1 where the name matches `re`. */
export function matchNames(names, re) {
  const m = new Uint8Array(names.length);
  for (let i = 0; i < names.length; i++) if (re.test(names[i])) m[i] = 1;
  return m;
}

/**
 * Samples under matching frames inside the subtree of `root` (nested matches
 * counted once) and the number of matching nodes.
 */
export function matchStats(tree, nameMatch, root = 0) {
  let samples = 0, nodes = 0;
  const stop = tree.end[root];
  for (let i = root; i < stop; ) {
    if (nameMatch[tree.name[i]]) {
      samples += tree.total[i];
      // count matching nodes inside without adding their samples again
      for (let j = i; j < tree.end[i]; j++) if (nameMatch[tree.name[j]]) nodes++;
      i = tree.end[i];
    } else i++;
  }
  return { samples, nodes };
}
