package member

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Name: "n1", Gossip: "127.0.0.1:0", Seeds: []string{"127.0.0.1:7946"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Config){
		"Name":        func(c *Config) { c.Name = "" },
		"Key":         func(c *Config) { c.Key = []byte("short") },
		"LoadEvery":   func(c *Config) { c.LoadEvery = -time.Second },
		"FollowEvery": func(c *Config) { c.FollowEvery = -time.Second },
		"JoinRetry":   func(c *Config) { c.JoinRetry = -time.Second },
		"Gossip":      func(c *Config) { c.Gossip = "no-port" },
		"Seeds[1]":    func(c *Config) { c.Seeds = append(c.Seeds, " ") },
	}
	for name, mut := range bad {
		c := ok
		c.Seeds = append([]string(nil), ok.Seeds...)
		mut(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate = %v, want an ErrInvalidConfig naming the field", name, err)
		}
	}
	if _, err := Join(Config{}, "127.0.0.1:1"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Join with no name = %v, want ErrInvalidConfig", err)
	}
}
