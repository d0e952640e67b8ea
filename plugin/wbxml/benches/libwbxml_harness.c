/*
 * Times libwbxml 0.11.8's in-process converters on one WBXML document, for benches/codec.rs.
 *
 *   libwbxml_harness FILE.wbxml
 *
 * For each direction it calibrates an iteration count worth about half a second, runs five
 * rounds of it and prints the fastest round (the least disturbed by other load on the machine) as
 *
 *   <name> <wbxml_bytes> <iterations> <seconds_per_iteration>
 *
 * wbxml2xml: WBXML -> XML text (libwbxml parses into its tree, then writes XML).
 * xml2wbxml: XML (libwbxml's own rendering of the input) -> WBXML, no string table, no public
 *            id (the `-n -a` form, i.e. the EAS header).
 * A final line `roundtrip_identical 0|1` says whether xml2wbxml reproduced the input bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wbxml/wbxml.h>

#define ROUNDS 5
#define TARGET_SECONDS 0.5

typedef int (*step_fn)(void *context);

struct wbxml2xml_context {
    WBXMLConvWBXML2XML *conv;
    WB_UTINY *wbxml;
    WB_ULONG wbxml_len;
};

struct xml2wbxml_context {
    WBXMLConvXML2WBXML *conv;
    WB_UTINY *xml;
    WB_ULONG xml_len;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_wbxml2xml(void *raw) {
    struct wbxml2xml_context *context = raw;
    WB_UTINY *xml = NULL;
    WB_ULONG xml_len = 0;
    WBXMLError error = wbxml_conv_wbxml2xml_run(context->conv, context->wbxml, context->wbxml_len, &xml, &xml_len);
    free(xml);
    return error == WBXML_OK;
}

static int run_xml2wbxml(void *raw) {
    struct xml2wbxml_context *context = raw;
    WB_UTINY *wbxml = NULL;
    WB_ULONG wbxml_len = 0;
    WBXMLError error = wbxml_conv_xml2wbxml_run(context->conv, context->xml, context->xml_len, &wbxml, &wbxml_len);
    free(wbxml);
    return error == WBXML_OK;
}

/* Seconds per iteration of the fastest of ROUNDS rounds of a calibrated iteration count. */
static int measure(const char *name, step_fn step, void *context, unsigned long wbxml_bytes) {
    double start = now();
    if (!step(context)) {
        fprintf(stderr, "%s failed\n", name);
        return 0;
    }
    double once = now() - start;
    unsigned long iterations = once > 0 ? (unsigned long)(TARGET_SECONDS / once) : 1000;
    if (iterations < 1) iterations = 1;
    double best = 0;
    for (int round = 0; round < ROUNDS; round++) {
        start = now();
        for (unsigned long i = 0; i < iterations; i++) {
            if (!step(context)) {
                fprintf(stderr, "%s failed\n", name);
                return 0;
            }
        }
        double per_iteration = (now() - start) / (double)iterations;
        if (round == 0 || per_iteration < best) best = per_iteration;
    }
    printf("%s %lu %lu %.9f\n", name, wbxml_bytes, iterations, best);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.wbxml\n", argv[0]);
        return 2;
    }
    FILE *file = fopen(argv[1], "rb");
    if (!file) {
        perror(argv[1]);
        return 2;
    }
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    WB_UTINY *wbxml = malloc((size_t)size);
    if (!wbxml || fread(wbxml, 1, (size_t)size, file) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    fclose(file);

    struct wbxml2xml_context to_xml = { NULL, wbxml, (WB_ULONG)size };
    if (wbxml_conv_wbxml2xml_create(&to_xml.conv) != WBXML_OK) return 1;
    wbxml_conv_wbxml2xml_set_gen_type(to_xml.conv, WBXML_GEN_XML_COMPACT);
    wbxml_conv_wbxml2xml_set_language(to_xml.conv, WBXML_LANG_ACTIVESYNC);
    wbxml_conv_wbxml2xml_enable_preserve_whitespaces(to_xml.conv);

    /* libwbxml's own XML rendering is the input of the other direction. */
    WB_UTINY *xml = NULL;
    WB_ULONG xml_len = 0;
    if (wbxml_conv_wbxml2xml_run(to_xml.conv, wbxml, (WB_ULONG)size, &xml, &xml_len) != WBXML_OK) {
        fprintf(stderr, "libwbxml cannot decode %s\n", argv[1]);
        return 1;
    }
    struct xml2wbxml_context to_wbxml = { NULL, xml, xml_len };
    if (wbxml_conv_xml2wbxml_create(&to_wbxml.conv) != WBXML_OK) return 1;
    wbxml_conv_xml2wbxml_set_version(to_wbxml.conv, WBXML_VERSION_13);
    wbxml_conv_xml2wbxml_enable_preserve_whitespaces(to_wbxml.conv);
    wbxml_conv_xml2wbxml_disable_string_table(to_wbxml.conv);
    wbxml_conv_xml2wbxml_disable_public_id(to_wbxml.conv);

    if (!measure("wbxml2xml", run_wbxml2xml, &to_xml, (unsigned long)size)) return 1;
    if (!measure("xml2wbxml", run_xml2wbxml, &to_wbxml, (unsigned long)size)) return 1;

    WB_UTINY *again = NULL;
    WB_ULONG again_len = 0;
    int identical = wbxml_conv_xml2wbxml_run(to_wbxml.conv, xml, xml_len, &again, &again_len) == WBXML_OK &&
                    again_len == (WB_ULONG)size && memcmp(again, wbxml, (size_t)size) == 0;
    printf("roundtrip_identical %d\n", identical);

    free(again);
    free(xml);
    free(wbxml);
    wbxml_conv_wbxml2xml_destroy(to_xml.conv);
    wbxml_conv_xml2wbxml_destroy(to_wbxml.conv);
    return 0;
}
