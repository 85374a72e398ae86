#ifndef OLLIE_IMAGE_H
#define OLLIE_IMAGE_H
#include <stddef.h>
#include <stdint.h>

/* JPEG decoding with libjpeg, whose errors would otherwise end the process (its default
 * error_exit calls exit()). Every failure here returns with a one-line message instead.
 * Two steps, like libpng's simplified API, so the caller can refuse a huge header before
 * anything is decoded:
 *
 *     ollie_jpeg *jpeg = ollie_jpeg_begin(data, size, &info, message);   // header only
 *     ... check info.width, info.height; allocate height × width × info.channels bytes ...
 *     ollie_jpeg_finish(jpeg, pixels, message);                           // the pixels
 *     ollie_jpeg_end(jpeg);
 *
 * `data` must stay valid until ollie_jpeg_end. */

/* Room for libjpeg's longest message (JMSG_LENGTH_MAX). */
#define OLLIE_IMAGE_MESSAGE_SIZE 200

typedef struct ollie_jpeg ollie_jpeg;

typedef struct {
    uint32_t width, height;
    /* 1 for a grayscale JPEG; 3 otherwise (YCbCr, RGB, and CMYK/YCCK converted to RGB). */
    int channels;
    /* 1 when the file is CMYK or YCCK (decoded to RGB). */
    int cmyk;
    /* 1 when the file is progressive. */
    int progressive;
} ollie_jpeg_info;

/* Reads the header. NULL on failure, with the reason in `message`. */
ollie_jpeg *ollie_jpeg_begin(const uint8_t *data, size_t size, ollie_jpeg_info *info,
                             char message[OLLIE_IMAGE_MESSAGE_SIZE]);

/* Decodes into `pixels` (height × width × channels bytes, rows top to bottom). 1 on success;
 * 0 with the reason in `message` for corrupt data, and for a file that ends early (libjpeg
 * would only warn and fill the rest with gray). */
int ollie_jpeg_finish(ollie_jpeg *jpeg, uint8_t *pixels, char message[OLLIE_IMAGE_MESSAGE_SIZE]);

/* Frees everything; NULL is fine. */
void ollie_jpeg_end(ollie_jpeg *jpeg);

#endif
