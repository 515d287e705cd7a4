package sim

import (
	"context"
	"time"
)

// hbEntry is one scheduled heartbeat. gen must match the client's gen when it comes
// due, otherwise the entry is stale (the client went offline or was rescheduled).
type hbEntry struct {
	due int64 // unix ns
	idx int32
	gen uint32
}

// hbHeap is a binary min-heap of heartbeats by due time.
type hbHeap []hbEntry

func (h *hbHeap) push(e hbEntry) {
	*h = append(*h, e)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].due <= a[i].due {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *hbHeap) pop() hbEntry {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		s := l
		if r := l + 1; r < n && a[r].due < a[l].due {
			s = r
		}
		if a[i].due <= a[s].due {
			break
		}
		a[i], a[s] = a[s], a[i]
		i = s
	}
	*h = a
	return top
}

// schedQuantum is the shortest sleep of the scheduler: heartbeats due within it run
// together, which keeps wakeups bounded however large the fleet.
const schedQuantum = 5 * time.Millisecond

// runScheduler drives every client's heartbeat from one goroutine until ctx is done.
func (m *model) runScheduler(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.mu.Lock()
		now := m.now()
		m.stepLocked(now)
		next := m.nextDueLocked()
		m.mu.Unlock()
		wait := time.Minute
		if next != 0 {
			wait = time.Duration(next - now.UnixNano())
		}
		wait = max(wait, schedQuantum)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.wake:
		}
	}
}
