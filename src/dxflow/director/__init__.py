"""The director: CA, agent registration and approval, server and session state, admin and user API."""
