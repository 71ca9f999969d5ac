package login

import (
	"time"

	"golang.org/x/oauth2"
)

// Flow names how a token was obtained.
type Flow string

// The flows.
const (
	FlowBrowser           Flow = "browser"
	FlowDevice            Flow = "device"
	FlowClientCredentials Flow = "client-credentials"
)

// Token is what a Store keeps for one context: the tokens plus what is
// needed to refresh them without discovery, and to notice when the
// context's identity settings no longer match.
type Token struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	Audience     string    `json:"audience,omitempty"`
	TokenURL     string    `json:"token_url"`
	Flow         Flow      `json:"flow"`
}

// OAuth2 returns the token as golang.org/x/oauth2 sees it.
func (t *Token) OAuth2() *oauth2.Token {
	return &oauth2.Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry}
}

// Matches reports whether the token was issued for this issuer, client
// and audience.
func (t *Token) Matches(issuer, clientID, audience string) bool {
	return t.Issuer == issuer && t.ClientID == clientID && t.Audience == audience
}
