package sim

import (
	"bytes"
	"encoding/gob"
	"reflect"
	"testing"
	"time"
)

// TestSnapEncoderWritesWhatGobWrites: every save of the kept encoder is byte for
// byte what a fresh gob encoder writes for the same snapshot, and decodes alone,
// as the state file's reader decodes it, however the snapshot changed between
// saves (patches, reverts, orphaned clients appearing after the first save).
func TestSnapEncoderWritesWhatGobWrites(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 300, Heartbeat: 2 * time.Second})
	m := tm.model
	var e snapEncoder
	var got bytes.Buffer
	var last *snapshot
	for round := range 4 {
		switch round {
		case 1:
			if _, err := m.setOnline(20, false, time.Minute); err != nil { // a revert
				t.Fatal(err)
			}
		case 2:
			if _, err := m.updateCertificate("sepm-01", false); err != nil {
				t.Fatal(err)
			}
		case 3:
			tm.patchAll(secureCfg(false)) // PATCH counts: a map type the first save held none of
		}
		tm.clk.set(tm.clk.now().Add(3 * time.Second))
		m.mu.Lock()
		m.stepLocked(tm.clk.now())
		sn := m.snapshotLocked(last)
		m.mu.Unlock()
		var want bytes.Buffer
		if err := gob.NewEncoder(&want).Encode(sn); err != nil {
			t.Fatal(err)
		}
		if err := e.encode(&got, sn); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("save %d: %d bytes, a fresh gob encoder writes %d (or other bytes)", round, got.Len(), want.Len())
		}
		var back snapshot
		if err := gob.NewDecoder(bytes.NewReader(got.Bytes())).Decode(&back); err != nil {
			t.Fatalf("save %d does not decode alone: %v", round, err)
		}
		back.due, sn.due = nil, nil
		if round == 3 && len(sn.Patches) == 0 {
			t.Fatal("no PATCH counted: the test does not reach the patches")
		}
		if !reflect.DeepEqual(&back, sn) {
			t.Fatalf("save %d decodes to another snapshot", round)
		}
		last = sn
	}
}
