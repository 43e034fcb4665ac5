/* Windows helpers shared by the library, the doubles and the cassettes.
 * Not installed. */
#ifndef PK_WIN_H
#define PK_WIN_H

#include <stddef.h>
#include <windows.h>

/* UTF-8 to UTF-16 (heap, pk__free); NULL when out of memory or s is not
 * valid UTF-8. */
PK_EXTERN wchar_t *pk__wide(const char *s);
/* The system's text for a Windows error code, without the trailing
 * period and newline, in buf; "Windows error N" when it has none. */
PK_EXTERN const char *pk__win_msg(DWORD err, char *buf, size_t len);

#endif
