package sim

// The simulator's computers page as it was rendered before the page was built
// outside the model lock and streamed (a scan of the fleet, each record's view
// marshalled by encoding/json): the reference the streamed reply must equal byte
// for byte (page_test.go).

// refComputersPage answers a computer query with a page of full (wPage[wComputer])
// or reduced (wPage[wComputerReduced]) records; groupID (groups/{g}/computers)
// limits it to one group.
func (m *model) refComputersPage(q computerQuery, groupID string) (any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if groupID != "" {
		g, err := m.groupLocked(groupID)
		if err != nil {
			return nil, err
		}
		q.group = int32(g.idx)
	}
	match := m.matchLocked(q, -1) // the scan, as before the index
	n := len(match)
	// Each record as encoding/json renders the view, not through the streamed
	// templates (recordtmpl.go) the reply uses.
	at := func(k int) wComputer {
		if q.desc {
			k = n - 1 - k
		}
		return m.computerView(m.rowLocked(match[k]))
	}
	if q.reduced {
		return pageOf(n, q.index, q.size, func(lo, hi int) []wComputerReduced {
			out := make([]wComputerReduced, 0, hi-lo)
			for k := lo; k < hi; k++ {
				out = append(out, reduce(at(k)))
			}
			return out
		}), nil
	}
	return pageOf(n, q.index, q.size, func(lo, hi int) []wComputer {
		out := make([]wComputer, 0, hi-lo)
		for k := lo; k < hi; k++ {
			out = append(out, at(k))
		}
		return out
	}), nil
}
