-- An artifact's content type is served back verbatim as the Content-Type of its download
-- (issue #19: a type holding CR LF split that response). The API and the store check it against
-- RFC 9110's media-type grammar (src/core/http_grammar.h); this constraint is the last line:
-- printable ASCII tokens, `type/subtype`, then `; name=value` parameters (token or quoted
-- string). NOT VALID: rows written before it are not rescanned (they are served with safe
-- headers, and an unsafe type is replaced when served).
ALTER TABLE synaps.artifacts ADD CONSTRAINT artifacts_content_type_is_media_type CHECK (
  char_length(content_type) <= 128 AND
  content_type ~ '^[-!#$%&''*+.^_`|~0-9A-Za-z]+/[-!#$%&''*+.^_`|~0-9A-Za-z]+([ \t]*;[ \t]*[-!#$%&''*+.^_`|~0-9A-Za-z]+=([-!#$%&''*+.^_`|~0-9A-Za-z]+|"([^"\\[:cntrl:]]|\t|\\([^[:cntrl:]]|\t))*"))*$'
) NOT VALID;
