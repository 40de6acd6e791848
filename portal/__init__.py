"""The patient web portal: server-rendered French pages on the hub's HTTPS port."""
