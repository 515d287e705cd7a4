package bot

import (
	"fmt"
	"slices"
	"strings"
)

// Channels says where /sepm is accepted, per platform: a platform with an entry
// takes commands only in the channels listed; a platform without one, anywhere.
// Adapters' flags (--channel slack:C0123, or their own --slack-channel) fill it.
type Channels map[string][]string

// ParseChannels reads "platform:channel" entries (comma-separated or repeated).
func ParseChannels(in []string) (Channels, error) {
	out := Channels{}
	for _, item := range in {
		for _, e := range strings.Split(item, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			p, c, ok := strings.Cut(e, ":")
			if !ok || p == "" || c == "" || strings.ContainsAny(c, "| \t") {
				return nil, fmt.Errorf("--channel: %q is not platform:channel (e.g. slack:C0123ABC, discord:1234567890, console:sepm)", e)
			}
			if !slices.Contains(out[p], c) {
				out[p] = append(out[p], c)
			}
		}
	}
	return out, nil
}

// Allows reports whether /sepm is accepted in channel on platform.
func (c Channels) Allows(platform, channel string) bool {
	list, ok := c[platform]
	return !ok || slices.Contains(list, channel)
}

// Links maps each linked platform identity to the person it is: one person with
// accounts on several platforms counts once, as the first identity of their link.
type Links map[string]string

// ParseLinks reads --link values, each the identities of one person separated by
// '=' or ',' ("slack:U024BE7LH=discord:80351110224678912"); an identity may belong to
// one person only.
func ParseLinks(in []string) (Links, error) {
	out := Links{}
	for _, item := range in {
		ids := strings.FieldsFunc(item, func(r rune) bool { return r == '=' || r == ',' })
		if len(ids) < 2 {
			return nil, fmt.Errorf("--link: %q links fewer than two identities (platform:id=platform:id)", item)
		}
		for i := range ids {
			ids[i] = strings.TrimSpace(ids[i])
		}
		if _, err := parseRoleList("link", ids, false); err != nil {
			return nil, err
		}
		for _, id := range ids {
			if prev, ok := out[id]; ok && prev != ids[0] {
				return nil, fmt.Errorf("--link: %s is linked to two people (%s and %s)", id, prev, ids[0])
			}
			out[id] = ids[0]
		}
	}
	return out, nil
}

// Person is the identity a user key counts as: its link's first identity, or itself.
func (l Links) Person(userKey string) string {
	if p, ok := l[userKey]; ok {
		return p
	}
	return userKey
}

// Linked reports whether the user key belongs to a link.
func (l Links) Linked(userKey string) bool {
	_, ok := l[userKey]
	return ok
}
