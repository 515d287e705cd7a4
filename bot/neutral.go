package bot

import (
	"regexp"
	"strings"
)

// Text in a Message may come from SEPM (group and computer names, errors) or from a
// user (a deny reason, a typed command). Renderers pass every text through their
// platform's escape, so such text can never notify a channel or hide a link. The bot's
// own markup (*bold*, `code`) survives both escapes.

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// EscapeSlack neutralises Slack mrkdwn control sequences: every mention, channel
// broadcast (<!channel>, <!here>), user or group reference (<@U…>, <!subteam^…>) and
// link (<https://…|text>) needs '<', so escaping &, < and > leaves them inert text.
// Post with link_names off (the default) so a bare "@channel" stays text too.
func EscapeSlack(s string) string { return slackEscaper.Replace(s) }

var (
	discordBroadcast = regexp.MustCompile(`@(everyone|here)`)
	discordMention   = regexp.MustCompile(`<(@[!&]?|#)(\d+)>`)
	discordMasked    = regexp.MustCompile(`\[([^\]\n]*)\]\(`)
)

// EscapeDiscord neutralises Discord markdown that reaches people: @everyone and
// @here (a zero-width space after the @), user, role and channel mentions (<@1…>,
// <@&1…>, <#1…>: the angle brackets escaped) and masked links ([text](url): the
// brackets escaped, so the URL shows). Send with allowed mentions off as well
// (AllowedMentions{Parse: []}): the escape keeps the text honest, the flag keeps
// anything missed from pinging.
func EscapeDiscord(s string) string {
	s = discordBroadcast.ReplaceAllString(s, "@\u200b$1")
	s = discordMention.ReplaceAllString(s, `\<$1$2\>`)
	s = discordMasked.ReplaceAllString(s, `\[$1\](`)
	return s
}
