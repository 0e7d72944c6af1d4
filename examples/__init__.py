"""Small applications that use emailqueue (see each directory's README)."""
