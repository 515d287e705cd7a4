package sepm

// Wire types of the SEPM REST API (v1), as described by Broadcom's Swagger document.
// Only the fields sepmbot reads (or sends) are declared: a full computer record has
// about 150 fields and a sweep reads every computer, so the client decodes only
// these; unknown fields are ignored and missing optional ones decode to their zero
// value. (The simulator answers with every field of the schema, from its own
// generated types; sepm/sim's contract test checks them against the document.)

// AuthRequest is the body of POST identity/authenticate (schema UserCredential).
type AuthRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Domain   string `json:"domain"`
}

// AuthResponse is the reply of POST identity/authenticate (schema identity_UserToken).
type AuthResponse struct {
	Username               string `json:"username,omitempty"`
	Domain                 string `json:"domain,omitempty"`
	Token                  string `json:"token"`
	TokenExpiration        int64  `json:"tokenExpiration"` // seconds from now
	RefreshToken           string `json:"refreshToken,omitempty"`
	RefreshTokenExpiration int64  `json:"refreshTokenExpiration,omitempty"`
	AdminID                string `json:"adminId"`
	DomainID               string `json:"domainid,omitempty"`
	ServerTime             int64  `json:"serverTime,omitempty"` // epoch ms
}

// ErrorBody is SEPM's error reply: {"errorCode":"400","appErrorCode":"","errorMessage":"..."}.
type ErrorBody struct {
	ErrorCode    string `json:"errorCode"`
	AppErrorCode string `json:"appErrorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// Version is the reply of GET version.
type Version struct {
	APISequence string `json:"API_SEQUENCE"`
	APIVersion  string `json:"API_VERSION"`
	Version     string `json:"version"`
}

// Page is SEPM's paging envelope (schemas groups_Page and PageObject). Number is
// zero-based in replies although the pageIndex query parameter starts at 1.
type Page[T any] struct {
	Content          []T   `json:"content"`
	FirstPage        bool  `json:"firstPage"`
	LastPage         bool  `json:"lastPage"`
	Number           int   `json:"number"`
	NumberOfElements int   `json:"numberOfElements"`
	Size             int   `json:"size"`
	TotalElements    int64 `json:"totalElements"`
	TotalPages       int   `json:"totalPages"`
}

// DomainSummary names a SEPM domain.
type DomainSummary struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Group is one client group (schema Group).
type Group struct {
	ID                        string        `json:"id"`
	Name                      string        `json:"name"`
	Description               string        `json:"description"`
	FullPathName              string        `json:"fullPathName"`
	NumberOfPhysicalComputers int           `json:"numberOfPhysicalComputers"`
	Created                   int64         `json:"created,omitempty"`
	LastModified              int64         `json:"lastModified,omitempty"`
	PolicySerialNumber        string        `json:"policySerialNumber"`
	PolicyDate                int64         `json:"policyDate,omitempty"`
	DefaultLocationID         string        `json:"defaultLocationId"`
	PolicyInheritanceEnabled  bool          `json:"policyInheritanceEnabled"`
	Domain                    DomainSummary `json:"domain"`
}

// Path returns the group's full path. Real replies sometimes leave fullPathName empty
// and put the full path in name; this accepts both.
func (g Group) Path() string {
	if g.FullPathName != "" {
		return g.FullPathName
	}
	return g.Name
}

// GroupSummary is the group reference inside a Computer.
type GroupSummary struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	FullPathName string        `json:"fullPathName"`
	Domain       DomainSummary `json:"domain"`
}

// Path returns the group's full path, tolerating an empty fullPathName.
func (g GroupSummary) Path() string {
	if g.FullPathName != "" {
		return g.FullPathName
	}
	return g.Name
}

// Computer is one managed client (schema Computer): only the fields sepmbot reads.
type Computer struct {
	ComputerName    string       `json:"computerName"`
	UniqueID        string       `json:"uniqueId"`
	AgentVersion    string       `json:"agentVersion"`
	OnlineStatus    int          `json:"onlineStatus"`   // 1 online, 0 offline
	LastUpdateTime  int64        `json:"lastUpdateTime"` // epoch ms of the last check-in
	ProfileSerialNo string       `json:"profileSerialNo"`
	LastServerName  string       `json:"lastServerName"`
	Group           GroupSummary `json:"group"`
}

// Location is one entry of GET groups/{g}/locations?hasName=true, which replies with
// strings of the form "Name:/sepm/api/v1/groups/G/locations/L".
type Location struct {
	ID   string
	Name string
}

// Settings is the reply of GET groups/{g}/locations/{l}/settings and the body of its
// PATCH (schema Settings wrapping GroupSettingsConfiguration).
type Settings struct {
	Configuration Configuration  `json:"configuration"`
	LockedOptions map[string]any `json:"lockedoptions,omitempty"`
}

// Configuration is GroupSettingsConfiguration, the parts sepmbot reads and writes.
// Pointer fields let a PATCH carry only what changes.
type Configuration struct {
	CommunicationSettings *CommunicationSettings `json:"communication_settings,omitempty"`
	GeneralSettings       *GeneralSettings       `json:"general_settings,omitempty"`
}

// CommunicationSettings holds the heartbeat and the management server list in use.
type CommunicationSettings struct {
	Mode                             string             `json:"mode,omitempty"` // PULL or PUSH
	PullModeHeartbeatFreqInSeconds   *int64             `json:"pull_mode_heartbeat_freq_in_seconds,omitempty"`
	UploadOpStateHeartbeatFreqInSec  *int64             `json:"upload_op_state_heartbeat_freq_in_seconds,omitempty"`
	UploadLogHeartbeatFreqInSeconds  *int64             `json:"upload_log_heartbeat_freq_in_seconds,omitempty"`
	UploadCmdStateHeartbeatFreqInSec *int64             `json:"upload_cmd_state_heartbeat_freq_in_seconds,omitempty"`
	SemServer                        *ServerListSummary `json:"sem_server,omitempty"`
}

// ServerListSummary names a management server list (MSL).
type ServerListSummary struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// GeneralSettings wraps the security settings.
type GeneralSettings struct {
	SecuritySettings *SecuritySettings `json:"security_settings,omitempty"`
}

// SecuritySettings holds the secure-communication switch.
type SecuritySettings struct {
	SecureCommunications *bool  `json:"secure_communications,omitempty"`
	StoppedMode          string `json:"stopped_mode,omitempty"`
}

// ClientVersionStat is one row of GET stats/client/version.
type ClientVersionStat struct {
	Version          string `json:"version"`
	FormattedVersion string `json:"formattedVersion"`
	ClientsCount     int    `json:"clientsCount"`
}

// ClientVersionResponse is the reply of GET stats/client/version.
type ClientVersionResponse struct {
	ClientVersionList []ClientVersionStat `json:"clientVersionList"`
	LastUpdated       int64               `json:"lastUpdated"`
}

// OnlineStat is one row of GET stats/client/onlinestatus ("Online" or "Offline").
type OnlineStat struct {
	Status       string `json:"status"`
	ClientsCount int    `json:"clientsCount"`
}

// OnlineStatusResponse is the reply of GET stats/client/onlinestatus.
type OnlineStatusResponse struct {
	ClientCountStatsList []OnlineStat `json:"clientCountStatsList"`
	LastUpdated          int64        `json:"lastUpdated"`
}

// Server is one row of GET admin/servers. The schema declares only id.
type Server struct {
	ID string `json:"id"`
}

// ReplicationPartnerStatus is one replication partner.
type ReplicationPartnerStatus struct {
	ID                    string `json:"id"`
	Name                  string `json:"name"`
	Location              string `json:"location"`
	LastRunTime           int64  `json:"lastRunTime"`
	LastSuccessfulRunTime int64  `json:"lastSuccessfulRunTime"`
	NextRunTime           int64  `json:"nextRunTime"`
	StatusCode            string `json:"status_code"`
}

// ReplicationStatus is the local site's replication state.
type ReplicationStatus struct {
	ID                           string                     `json:"id"`
	SiteName                     string                     `json:"siteName"`
	SiteLocation                 string                     `json:"siteLocation"`
	ReplicationPartnerStatusList []ReplicationPartnerStatus `json:"replicationPartnerStatusList"`
}

// ReplicationStatusResponse is the reply of GET replication/status.
type ReplicationStatusResponse struct {
	ReplicationStatus ReplicationStatus `json:"replicationStatus"`
}
