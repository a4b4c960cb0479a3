package parallax

// Version is the Parallax release this module implements.
const Version = "0.1.0-dev"
