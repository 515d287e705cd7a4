module sepmbot

go 1.26.0

require (
	github.com/alecthomas/kong v1.17.0
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/slack-go/slack v0.35.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
