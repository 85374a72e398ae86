#include "ollie_image.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

/* libjpeg's error manager extended with a jump target: error_exit longjmps back into the
 * ollie_jpeg_* call that was running, which returns the message instead of exiting. */
struct error_manager {
    struct jpeg_error_mgr library;
    jmp_buf jump;
    char message[OLLIE_IMAGE_MESSAGE_SIZE];
    int ended_early;
};

struct ollie_jpeg {
    struct jpeg_decompress_struct decompress;
    struct error_manager errors;
};

static void copy_message(char *target, const char *source) {
    strncpy(target, source, OLLIE_IMAGE_MESSAGE_SIZE - 1);
    target[OLLIE_IMAGE_MESSAGE_SIZE - 1] = '\0';
}

static void error_exit(j_common_ptr info) {
    struct error_manager *errors = (struct error_manager *)info->err;
    /* After the data ran out, the error is only a consequence ("contains no image"): say why. */
    if (!errors->ended_early) {
        char text[JMSG_LENGTH_MAX];
        (*info->err->format_message)(info, text);
        copy_message(errors->message, text);
    }
    longjmp(errors->jump, 1);
}

/* Warnings are dropped (real-world files are full of harmless "extraneous bytes" ones), except
 * the one for a file that ends early: that image would be part gray, so it is an error. */
static void emit_message(j_common_ptr info, int level) {
    struct error_manager *errors = (struct error_manager *)info->err;
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF && !errors->ended_early) {
        errors->ended_early = 1;
        copy_message(errors->message, "the file ends early (truncated)");
    }
}

static void output_message(j_common_ptr info) { (void)info; }

ollie_jpeg *ollie_jpeg_begin(const uint8_t *data, size_t size, ollie_jpeg_info *info,
                             char message[OLLIE_IMAGE_MESSAGE_SIZE]) {
    ollie_jpeg *jpeg = calloc(1, sizeof *jpeg);
    if (jpeg == NULL) {
        copy_message(message, "out of memory");
        return NULL;
    }
    jpeg->decompress.err = jpeg_std_error(&jpeg->errors.library);
    jpeg->errors.library.error_exit = error_exit;
    jpeg->errors.library.emit_message = emit_message;
    jpeg->errors.library.output_message = output_message;
    if (setjmp(jpeg->errors.jump)) {
        copy_message(message, jpeg->errors.message);
        ollie_jpeg_end(jpeg);
        return NULL;
    }
    jpeg_create_decompress(&jpeg->decompress);
    jpeg_mem_src(&jpeg->decompress, data, (unsigned long)size);
    jpeg_read_header(&jpeg->decompress, TRUE);
    struct jpeg_decompress_struct *d = &jpeg->decompress;
    switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE:
        d->out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        d->out_color_space = JCS_CMYK;  /* libjpeg turns YCCK into CMYK; finish turns CMYK into RGB */
        break;
    default:
        d->out_color_space = JCS_RGB;
        break;
    }
    info->width = d->image_width;
    info->height = d->image_height;
    info->channels = d->out_color_space == JCS_GRAYSCALE ? 1 : 3;
    info->cmyk = d->out_color_space == JCS_CMYK;
    info->progressive = d->progressive_mode ? 1 : 0;
    return jpeg;
}

/* CMYK to RGB as PIL does: R = (1 − C)(1 − K). Adobe's files (the only writer of CMYK JPEGs in
 * practice, and libjpeg itself marks them so) store the inks inverted, 255 − C, so there it is C·K. */
static void cmyk_to_rgb(const JSAMPLE *cmyk, uint8_t *rgb, JDIMENSION width, int inverted) {
    for (JDIMENSION x = 0; x < width; x++) {
        unsigned c = cmyk[4 * x], m = cmyk[4 * x + 1], y = cmyk[4 * x + 2], k = cmyk[4 * x + 3];
        if (!inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
        rgb[3 * x] = (uint8_t)((c * k + 127) / 255);
        rgb[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
        rgb[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

int ollie_jpeg_finish(ollie_jpeg *jpeg, uint8_t *pixels, char message[OLLIE_IMAGE_MESSAGE_SIZE]) {
    struct jpeg_decompress_struct *d = &jpeg->decompress;
    if (setjmp(jpeg->errors.jump)) {
        copy_message(message, jpeg->errors.message);
        return 0;
    }
    jpeg_start_decompress(d);
    int cmyk = d->out_color_space == JCS_CMYK;
    size_t row_bytes = (size_t)d->output_width * (cmyk ? 3 : (size_t)d->output_components);
    /* CMYK rows land in a scratch row from libjpeg's pool (freed with the decompressor). */
    JSAMPARRAY scratch = cmyk ? (*d->mem->alloc_sarray)((j_common_ptr)d, JPOOL_IMAGE, d->output_width * 4, 1) : NULL;
    while (d->output_scanline < d->output_height) {
        uint8_t *target = pixels + (size_t)d->output_scanline * row_bytes;
        JSAMPROW row = cmyk ? scratch[0] : target;
        if (jpeg_read_scanlines(d, &row, 1) != 1) break;
        if (cmyk) cmyk_to_rgb(scratch[0], target, d->output_width, d->saw_Adobe_marker);
    }
    jpeg_finish_decompress(d);
    if (jpeg->errors.ended_early) {
        copy_message(message, jpeg->errors.message);
        return 0;
    }
    return 1;
}

void ollie_jpeg_end(ollie_jpeg *jpeg) {
    if (jpeg == NULL) return;
    jpeg_destroy_decompress(&jpeg->decompress);
    free(jpeg);
}
