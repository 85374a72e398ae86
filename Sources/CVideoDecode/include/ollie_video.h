#ifndef OLLIE_VIDEO_H
#define OLLIE_VIDEO_H
#include <stdint.h>

/* Clip decoding with FFmpeg's libraries (libavformat, libavcodec, libswscale), in process.
 * Every failure returns 0 with a one-line reason in `error`; nothing here exits or aborts,
 * and everything allocated is freed on every path. Each call opens its own contexts, so
 * different clips may be decoded on different threads at once.
 *
 *     ollie_clip_info info;
 *     ollie_probe_clip(path, &info, error, sizeof error);          // header only: refuse huge sizes
 *     float *out = malloc(frames * height * width * channels * 4);
 *     ollie_decode_clip(path, frames, height, width, channels, 0, out, &found, error, sizeof error);
 */

/* Sides larger than this are refused before decoding. */
#define OLLIE_VIDEO_MAX_SIDE 8192

typedef struct {
    /* As displayed: after the rotation in the stream's display matrix. */
    int width, height;
    /* Clockwise degrees to turn the coded picture to display it: 0, 90, 180 or 270. */
    int rotation;
    /* From the container; 0 when it does not say. */
    int64_t frameCount;
    double durationSeconds;
    /* FFmpeg's short name: "h264", "hevc", "mjpeg", "vp9", … */
    char codec[32];
} ollie_clip_info;

/* Reads the container header and the best video stream's parameters. 1 on success. */
int ollie_probe_clip(const char *path, ollie_clip_info *info, char *error, int errorSize);

/* Decodes every frame of the best video stream and writes `frames` of them, evenly spaced over
 * the clip's duration by presentation timestamp, into `out` as frames × height × width × channels
 * Float32 in [0, 1] (channels 1: gray, 3: RGB), each rotated to its displayed orientation and
 * resized to height × width. `cropCenter` 1: each frame's centre at the aspect of height × width
 * is kept (the rest cut off) before resizing, instead of squashing the whole frame.
 * A clip of fewer than `frames` frames repeats its last one.
 * `framesFound`: frames the clip holds. 1 on success; 0 with the reason in `error`. */
int ollie_decode_clip(const char *path, int frames, int height, int width, int channels, int cropCenter, float *out,
                      int *framesFound, char *error, int errorSize);

#endif
