"""The compiled NTCIP 1209 v02 MIB (package data; see README.md and LICENSE.md here)."""
