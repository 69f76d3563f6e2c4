/*
 * com.brane.medterms — a tier-0 synapse tool in C: lookup_medical_term and search_medical_terms
 * over data/terms.db, a SQLite database shipped with the plugin and opened read-only (immutable)
 * through the Landlock allow-list. Ranked search is SQLite FTS5 (bm25), and SQLite's JSON
 * functions parse the arguments and build every answer, so this file holds no JSON code.
 */
#include "brane_plugin.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUERY_WORDS 16

static sqlite3 *db;

static uint8_t *copy_text(const char *text, size_t *length) {
    *length = strlen(text);
    uint8_t *copy = malloc(*length + 1);
    if (copy)
        memcpy(copy, text, *length + 1);
    return copy;
}

/* Answers BRANE_ERROR with {"message": ...}; the message is JSON-escaped by SQLite. */
static int fail(uint8_t **output, size_t *output_length, const char *message) {
    sqlite3_stmt *s;
    *output = NULL;
    *output_length = 0;
    if (sqlite3_prepare_v2(db, "SELECT json_object('message', ?1)", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, message, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) == SQLITE_ROW)
            *output = copy_text((const char *)sqlite3_column_text(s, 0), output_length);
        sqlite3_finalize(s);
    }
    return BRANE_ERROR;
}

static int init(const brane_host_api *host) {
    /* The working directory is the plugin's own; immutable=1 takes no locks and writes nothing. */
    if (sqlite3_open_v2("file:data/terms.db?immutable=1", &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        char message[256];
        int length = snprintf(message, sizeof message, "cannot open data/terms.db: %s", db ? sqlite3_errmsg(db) : "out of memory");
        host->log(BRANE_LOG_ERROR, message, (size_t)length);
        return BRANE_ERROR;
    }
    return BRANE_OK;
}

/* Turns free text into an FTS5 expression: each word a quoted prefix term, any word may match
 * ("heart rate" -> "heart"* OR "rate"*), so bm25 ranks terms matching more words higher. */
static int fts_expression(const char *text, char *out, size_t size) {
    size_t used = 0;
    int words = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && words < MAX_QUERY_WORDS;) {
        if (!(*p >= 0x80 || (*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))) {
            p++;
            continue;
        }
        const unsigned char *start = p;
        while (*p >= 0x80 || (*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
            p++;
        int n = snprintf(out + used, size - used, "%s\"%.*s\"*", words ? " OR " : "", (int)(p - start), start);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
        words++;
    }
    return words;
}

static const char search_sql[] =
    "SELECT json_object('query', ?1, 'results', json_group_array(json(hit))) FROM ("
    "  SELECT json_object('term', t.term, 'abbreviations', json(t.abbreviations), 'synonyms', json(t.synonyms),"
    "                     'category', t.category, 'definition', t.definition, 'score', round(-f.score, 3)) AS hit"
    "  FROM (SELECT rowid AS id, bm25(terms_fts, 10.0, 8.0, 5.0, 1.0) AS score FROM terms_fts WHERE terms_fts MATCH ?2) f"
    "  JOIN terms t ON t.id = f.id"
    "  WHERE ?4 IS NULL OR t.category = ?4 COLLATE NOCASE"
    "  ORDER BY t.id IN (SELECT term_id FROM aliases WHERE alias = trim(?1)) DESC, f.score"
    "  LIMIT ?3)";

static const char lookup_sql[] =
    "SELECT json_object('term', t.term, 'matchedAs', a.kind, 'abbreviations', json(t.abbreviations),"
    "                   'synonyms', json(t.synonyms), 'category', t.category, 'definition', t.definition)"
    "FROM aliases a JOIN terms t ON t.id = a.term_id WHERE a.alias = trim(?1)"
    "ORDER BY CASE a.kind WHEN 'term' THEN 0 WHEN 'abbreviation' THEN 1 ELSE 2 END LIMIT 1";

/* Runs a one-row JSON query; returns its text (malloc'd) or NULL. */
static uint8_t *run(const char *sql, const char *text, const char *fts, long long limit, const char *category, size_t *length) {
    sqlite3_stmt *s;
    uint8_t *answer = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
    if (fts) {
        sqlite3_bind_text(s, 2, fts, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, limit);
        if (category)
            sqlite3_bind_text(s, 4, category, -1, SQLITE_STATIC);
    }
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        answer = copy_text((const char *)sqlite3_column_text(s, 0), length);
    sqlite3_finalize(s);
    return answer;
}

static int search(const char *query, long long limit, const char *category, uint8_t **output, size_t *output_length) {
    char fts[1024];
    if (fts_expression(query, fts, sizeof fts) == 0)
        return fail(output, output_length, "the query has no words to search for");
    *output = run(search_sql, query, fts, limit, category, output_length);
    return *output ? BRANE_OK : fail(output, output_length, sqlite3_errmsg(db));
}

static int lookup(const char *term, uint8_t **output, size_t *output_length) {
    *output = run(lookup_sql, term, NULL, 0, NULL, output_length);
    if (*output)
        return BRANE_OK;
    /* Not a known spelling: suggest the three best search hits. */
    char fts[1024], message[512];
    sqlite3_stmt *s;
    int length = snprintf(message, sizeof message, "no term, abbreviation or synonym '%s'", term);
    if (fts_expression(term, fts, sizeof fts) > 0 &&
        sqlite3_prepare_v2(db,
                           "SELECT group_concat(term, ', ') FROM (SELECT t.term FROM terms_fts f JOIN terms t ON t.id = f.rowid"
                           " WHERE terms_fts MATCH ?1 ORDER BY bm25(terms_fts, 10.0, 8.0, 5.0, 1.0) LIMIT 3)",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, fts, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) && length > 0 && (size_t)length < sizeof message)
            snprintf(message + length, sizeof message - (size_t)length, "; did you mean: %s?", sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
    }
    return fail(output, output_length, message);
}

static int invoke(const char *method, const uint8_t *input, size_t input_length, uint8_t **output, size_t *output_length) {
    if (strcmp(method, "tools/call") != 0)
        return fail(output, output_length, "this plugin answers tools/call");
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT json_extract(?1, '$.name'), json_extract(?1, '$.arguments.term'),"
                           " json_extract(?1, '$.arguments.query'), coalesce(json_extract(?1, '$.arguments.limit'), 10),"
                           " json_extract(?1, '$.arguments.category')",
                           -1, &s, NULL) != SQLITE_OK)
        return fail(output, output_length, sqlite3_errmsg(db));
    sqlite3_bind_text(s, 1, (const char *)input, (int)input_length, SQLITE_STATIC);
    int status;
    if (sqlite3_step(s) != SQLITE_ROW) {
        status = fail(output, output_length, "the call is not valid JSON");
    } else {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        const char *term = (const char *)sqlite3_column_text(s, 1);
        const char *query = (const char *)sqlite3_column_text(s, 2);
        const char *category = (const char *)sqlite3_column_text(s, 4);
        if (name && strcmp(name, "lookup_medical_term") == 0 && term)
            status = lookup(term, output, output_length);
        else if (name && strcmp(name, "search_medical_terms") == 0 && query)
            status = search(query, sqlite3_column_int64(s, 3), category, output, output_length);
        else
            status = fail(output, output_length, "expected lookup_medical_term {term} or search_medical_terms {query}");
    }
    sqlite3_finalize(s);
    return status;
}

static void release(uint8_t *output, size_t length) {
    (void)length;
    free(output);
}

static void shutdown(void) { sqlite3_close(db); }

static const brane_plugin_descriptor descriptor = {
    BRANE_DESCRIPTOR_HEADER,
    .kind = BRANE_KIND_SYNAPSE,
    .id = "com.brane.medterms",
    .version = "0.1.0",
    .init = init,
    .invoke = invoke,
    .release = release,
    .shutdown = shutdown,
};

BRANE_EXPORT const brane_plugin_descriptor *brane_plugin_entry(void) { return &descriptor; }
