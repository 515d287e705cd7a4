package commands

import "strings"

// suggest returns the candidate closest to word (case-insensitive) when it is close
// enough to be a likely typo: an edit distance (with transpositions) of 1 for short
// words and 2 for longer ones, or word being a prefix of exactly one candidate.
// It returns "" when nothing is close.
func suggest(word string, candidates []string) string {
	w := []rune(strings.ToLower(word))
	if len(w) == 0 || len(w) > 64 {
		return ""
	}
	limit := 1
	if len(w) > 4 {
		limit = 2
	}
	best, bestD, tie := "", limit+1, false
	for _, c := range candidates {
		d := editDistance(w, []rune(strings.ToLower(c)))
		switch {
		case d < bestD:
			best, bestD, tie = c, d, false
		case d == bestD:
			tie = true
		}
	}
	if best != "" && !tie && bestD > 0 {
		return best
	}
	var prefixed []string
	for _, c := range candidates {
		if len(w) >= 2 && strings.HasPrefix(strings.ToLower(c), string(w)) {
			prefixed = append(prefixed, c)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	return ""
}

// editDistance is the optimal-string-alignment distance between a and b: insertions,
// deletions, substitutions and transpositions of adjacent characters each cost 1.
func editDistance(a, b []rune) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
