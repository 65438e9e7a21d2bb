# Reads a coverage profile written by go test -coverpkg=./... and prints,
# per package, its statements and the share that any test ran, then the
# total. Every test binary lists every block, so a block counts as run
# when any binary ran it.
NR > 1 {
	stmts[$1] = $2
	if ($3 > 0) ran[$1] = 1
}
END {
	for (b in stmts) {
		p = b
		sub(/:.*/, "", p)
		sub(/\/[^\/]*$/, "", p)
		sub(/^github\.com\/meshka\/meshka\/?/, "", p)
		if (p == "") p = "."
		all[p] += stmts[b]
		total += stmts[b]
		if (b in ran) {
			hit[p] += stmts[b]
			covered += stmts[b]
		}
	}
	printf "%-24s %10s %9s\n", "package", "statements", "covered"
	for (p in all) printf "%-24s %10d %8.1f%%\n", p, all[p], 100 * hit[p] / all[p] | "sort"
	close("sort")
	printf "%-24s %10d %8.1f%%\n", "total", total, 100 * covered / total
}
