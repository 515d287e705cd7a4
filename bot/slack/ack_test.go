package slack

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestSlashCommandAckedWithinSlacksDeadline, on a fake clock: a command whose
// router answers late is acked empty at DefaultAckWait (inside Slack's 3 s), and
// the late answer no longer rides on the ack; a prompt answer is the ack itself.
func TestSlashCommandAckedWithinSlacksDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &Adapter{cfg: Config{AckWait: DefaultAckWait}}
		start := time.Now()
		type ack struct {
			at      time.Duration
			payload any
		}
		acks := make(chan ack, 2)
		k := a.newAcker(func(p any) { acks <- ack{time.Since(start), p} }, true)
		time.Sleep(5 * time.Second) // the router is busy
		if k.send("late answer") {
			t.Fatal("a late answer rode on an ack already sent")
		}
		got := <-acks
		if got.at != DefaultAckWait || got.payload != nil || DefaultAckWait >= 3*time.Second {
			t.Fatalf("acked at %s with %v; Slack gives up at 3s", got.at, got.payload)
		}

		start = time.Now()
		k = a.newAcker(func(p any) { acks <- ack{time.Since(start), p} }, true)
		time.Sleep(300 * time.Millisecond)
		if !k.send("usage: …") {
			t.Fatal("a prompt answer was not the ack")
		}
		time.Sleep(5 * time.Second)
		got = <-acks
		if got.at != 300*time.Millisecond || got.payload != "usage: …" || len(acks) != 0 {
			t.Fatalf("ack at %s with %v (%d more)", got.at, got.payload, len(acks))
		}
	})
}
