package bot

import (
	"context"
	"strings"
	"sync"
	"time"

	"sepmbot/commands"
)

// Deliveries records delivery ids so each event is processed at most once;
// *store.DB implements it.
type Deliveries interface {
	Deliver(ctx context.Context, id string, now time.Time, ttl time.Duration) (bool, error)
}

// fresh records the delivery id; false means it was already processed.
func (r *Router) fresh(ctx context.Context, ev Event) bool {
	ok, err := r.record(ctx, ev)
	if err != nil {
		return false // fail closed: better to ask the user to repeat than to act twice
	}
	return ok
}

// record records the delivery id durably; false means it was already processed.
func (r *Router) record(ctx context.Context, ev Event) (bool, error) {
	if ev.DeliveryID == "" {
		return true, nil
	}
	ttl := max(r.DedupeTTL, 10*time.Minute)
	ok, err := r.Deliveries.Deliver(ctx, ev.Platform+"/"+ev.DeliveryID, r.now(), ttl)
	if err != nil {
		r.log().Error("recording delivery id", "err", err)
		return false, err
	}
	if !ok {
		r.log().Debug("dropping a repeated delivery", "delivery", ev.DeliveryID)
	}
	return ok, nil
}

// helpTexts caches /sepm help per HelpExtra (one per platform): the text is generated
// from the static command table, so it is built once, not on every request.
var helpTexts sync.Map // HelpExtra -> string

func helpText(extra string) string {
	if h, ok := helpTexts.Load(extra); ok {
		return h.(string)
	}
	help := commands.Help()
	if extra != "" {
		help = strings.TrimRight(help, "\n") + "\n\n" + extra
	}
	helpTexts.Store(extra, help)
	return help
}
