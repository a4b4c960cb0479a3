package roudi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// makeSocketDir creates the socket's directory with exactly the configured
// socket_dir_mode (os.MkdirAll applies the umask, so it is chmod'ed
// afterwards). A directory that already exists is left as it is: it may be
// shared (/tmp, /run) and its mode is its owner's business.
func (s *Server) makeSocketDir() error {
	dir := filepath.Dir(s.path)
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("create socket directory: %w", err)
	}
	mode := os.FileMode(s.cfg.SocketDirMode)
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("set socket directory mode %v: %w", s.cfg.SocketDirMode, err)
	}
	return nil
}

// chmodSocket gives the control socket the configured socket_mode.
// Connecting needs write permission on the socket file, so "0666" (with a
// socket_dir_mode that lets others search the directory) opens the
// router to every uid, whose rights the [[access]] rules then decide.
func (s *Server) chmodSocket() error {
	if err := os.Chmod(s.path, os.FileMode(s.cfg.SocketMode)); err != nil {
		return fmt.Errorf("set socket mode %v: %w", s.cfg.SocketMode, err)
	}
	return nil
}
