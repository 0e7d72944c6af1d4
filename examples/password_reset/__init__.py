"""A password-reset endpoint that sends its email inline over SMTP or through emailqueue."""
