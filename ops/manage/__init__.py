"""The management API (`sextant manage`): what the platform's console needs, over HTTP."""
