#include "ollie_video.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

/* One opened clip: the container, the chosen video stream and (when decoding) its decoder. */
struct clip {
    AVFormatContext *format;
    AVCodecContext *codec;
    const AVCodec *decoder;
    AVStream *stream;
    int rotation;
};

static void say(char *error, int errorSize, const char *format, ...) {
    if (!error || errorSize <= 0) return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error, (size_t)errorSize, format, arguments);
    va_end(arguments);
}

static const char *reason(int code, char buffer[AV_ERROR_MAX_STRING_SIZE]) {
    av_strerror(code, buffer, AV_ERROR_MAX_STRING_SIZE);
    return buffer;
}

/* Clockwise degrees to display the coded picture (the display matrix holds the counterclockwise
 * angle), rounded to a quarter turn. Flips in the matrix are not applied. */
static int rotation_of(const AVStream *stream) {
    const int32_t *matrix = NULL;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 31, 100)
    const AVPacketSideData *side = av_packet_side_data_get(stream->codecpar->coded_side_data,
                                                           stream->codecpar->nb_coded_side_data,
                                                           AV_PKT_DATA_DISPLAYMATRIX);
    if (side && side->size >= 9 * sizeof(int32_t)) matrix = (const int32_t *)side->data;
#else
    size_t size = 0;
    const uint8_t *data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (data && size >= 9 * sizeof(int32_t)) matrix = (const int32_t *)data;
#endif
    if (!matrix) return 0;
    double angle = -av_display_rotation_get(matrix);
    if (isnan(angle)) return 0;
    long quarter = lround(angle / 90.0);
    return (int)(((quarter % 4) + 4) % 4) * 90;
}

static void close_clip(struct clip *clip) {
    avcodec_free_context(&clip->codec);
    avformat_close_input(&clip->format);
}

/* Opens the container and finds the best video stream; with `decode`, opens its decoder too. */
static int open_clip(const char *path, struct clip *clip, int decode, char *error, int errorSize) {
    char buffer[AV_ERROR_MAX_STRING_SIZE];
    memset(clip, 0, sizeof *clip);
    /* FFmpeg would print warnings to stderr; every problem that matters is returned instead. */
    av_log_set_level(AV_LOG_QUIET);
    int code = avformat_open_input(&clip->format, path, NULL, NULL);
    if (code < 0) {
        say(error, errorSize, "not a video FFmpeg can open (%s)", reason(code, buffer));
        return 0;
    }
    code = avformat_find_stream_info(clip->format, NULL);
    if (code < 0) {
        say(error, errorSize, "damaged: its streams could not be read (%s)", reason(code, buffer));
        close_clip(clip);
        return 0;
    }
    code = av_find_best_stream(clip->format, AVMEDIA_TYPE_VIDEO, -1, -1, &clip->decoder, 0);
    if (code < 0) {
        const char *name = NULL;
        for (unsigned i = 0; i < clip->format->nb_streams; i++) {
            if (clip->format->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
                name = avcodec_get_name(clip->format->streams[i]->codecpar->codec_id);
                break;
            }
        }
        if (name) say(error, errorSize, "no decoder in this FFmpeg for its %s video", name);
        else say(error, errorSize, "holds no video stream");
        close_clip(clip);
        return 0;
    }
    clip->stream = clip->format->streams[code];
    clip->rotation = rotation_of(clip->stream);
    const AVCodecParameters *parameters = clip->stream->codecpar;
    if (parameters->width <= 0 || parameters->height <= 0) {
        say(error, errorSize, "damaged: its video has no picture size");
        close_clip(clip);
        return 0;
    }
    if (parameters->width > OLLIE_VIDEO_MAX_SIDE || parameters->height > OLLIE_VIDEO_MAX_SIDE) {
        say(error, errorSize, "claims %d×%d pixels, over the limit of %d per side", parameters->height,
            parameters->width, OLLIE_VIDEO_MAX_SIDE);
        close_clip(clip);
        return 0;
    }
    if (!decode) return 1;
    clip->codec = avcodec_alloc_context3(clip->decoder);
    if (!clip->codec) {
        say(error, errorSize, "out of memory");
        close_clip(clip);
        return 0;
    }
    code = avcodec_parameters_to_context(clip->codec, parameters);
    if (code >= 0) {
        /* One clip per core already: decoder threads would only compete. */
        clip->codec->thread_count = 1;
        clip->codec->pkt_timebase = clip->stream->time_base;
        code = avcodec_open2(clip->codec, clip->decoder, NULL);
    }
    if (code < 0) {
        say(error, errorSize, "cannot start the %s decoder (%s)", clip->decoder->name, reason(code, buffer));
        close_clip(clip);
        return 0;
    }
    return 1;
}

int ollie_probe_clip(const char *path, ollie_clip_info *info, char *error, int errorSize) {
    struct clip clip;
    memset(info, 0, sizeof *info);
    if (!open_clip(path, &clip, 0, error, errorSize)) return 0;
    const AVCodecParameters *parameters = clip.stream->codecpar;
    int turned = clip.rotation == 90 || clip.rotation == 270;
    info->width = turned ? parameters->height : parameters->width;
    info->height = turned ? parameters->width : parameters->height;
    info->rotation = clip.rotation;
    info->frameCount = clip.stream->nb_frames > 0 ? clip.stream->nb_frames : 0;
    if (clip.stream->duration != AV_NOPTS_VALUE && clip.stream->duration > 0) {
        info->durationSeconds = (double)clip.stream->duration * av_q2d(clip.stream->time_base);
    } else if (clip.format->duration != AV_NOPTS_VALUE && clip.format->duration > 0) {
        info->durationSeconds = (double)clip.format->duration / AV_TIME_BASE;
    }
    snprintf(info->codec, sizeof info->codec, "%s", avcodec_get_name(parameters->codec_id));
    close_clip(&clip);
    return 1;
}

/* The frames kept while decoding, already at the output size as bytes (height × width × channels
 * each, displayed orientation), with their presentation times in the stream's time base.
 * At most `capacity`: when full, every other one is dropped and from then on only every
 * `stride`-th decoded frame is kept, so a long clip costs bounded memory and stays evenly covered. */
struct kept {
    uint8_t *pixels;
    int64_t *times;
    int count, capacity;
    int64_t stride;
    size_t frameBytes;
};

/* Pixel format conversion and resizing, then the quarter turn on the small picture: resizing to
 * the turned size first and turning after gives the same pixels as turning first (both filters
 * are separable), at a fraction of the cost. */
struct converter {
    struct SwsContext *scale;
    uint8_t *scaled;  /* scaledHeight × stride bytes */
    int scaledWidth, scaledHeight, stride;
    int height, width, channels, rotation;
    /* Where the height × width window starts in the displayed scaled picture (nonzero when cropping). */
    int top, left;
};

static int convert(struct converter *converter, const AVFrame *frame, uint8_t *target) {
    int sourceRange = frame->color_range == AVCOL_RANGE_JPEG || frame->format == AV_PIX_FMT_YUVJ420P ||
                      frame->format == AV_PIX_FMT_YUVJ422P || frame->format == AV_PIX_FMT_YUVJ444P;
    int shrinking = converter->scaledWidth <= frame->width && converter->scaledHeight <= frame->height;
    converter->scale = sws_getCachedContext(converter->scale, frame->width, frame->height, frame->format,
                                            converter->scaledWidth, converter->scaledHeight,
                                            converter->channels == 1 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24,
                                            (shrinking ? SWS_AREA : SWS_BILINEAR) | SWS_ACCURATE_RND, NULL, NULL, NULL);
    if (!converter->scale) return 0;
    int space = frame->colorspace == AVCOL_SPC_UNSPECIFIED || frame->colorspace == AVCOL_SPC_RGB ? SWS_CS_DEFAULT
                                                                                                   : (int)frame->colorspace;
    /* Full-range output whatever the input's range: 0 is black and 1 white. Fails harmlessly for RGB input. */
    sws_setColorspaceDetails(converter->scale, sws_getCoefficients(space), sourceRange,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    uint8_t *planes[4] = {converter->scaled, NULL, NULL, NULL};
    int strides[4] = {converter->stride, 0, 0, 0};
    if (sws_scale(converter->scale, (const uint8_t *const *)frame->data, frame->linesize, 0, frame->height, planes,
                  strides) != converter->scaledHeight) return 0;

    /* Shapes: scaled is scaledHeight × scaledWidth × C (rows `stride` apart); target is height × width × C. */
    int h = converter->height, w = converter->width, c = converter->channels;
    for (int wy = 0; wy < h; wy++) {
        for (int wx = 0; wx < w; wx++) {
            int y = wy + converter->top, x = wx + converter->left;  /* in the displayed scaled picture */
            int sy, sx;  /* the scaled (coded-orientation) pixel shown at (y, x) */
            switch (converter->rotation) {
            case 90: sy = converter->scaledHeight - 1 - x; sx = y; break;
            case 180: sy = converter->scaledHeight - 1 - y; sx = converter->scaledWidth - 1 - x; break;
            case 270: sy = x; sx = converter->scaledWidth - 1 - y; break;
            default: sy = y; sx = x; break;
            }
            memcpy(target + ((size_t)wy * w + wx) * c, converter->scaled + (size_t)sy * converter->stride + (size_t)sx * c, (size_t)c);
        }
    }
    return 1;
}

static int keep(struct kept *kept, struct converter *converter, const AVFrame *frame, int64_t time, int64_t index) {
    if (index % kept->stride != 0) return 1;
    if (kept->count == kept->capacity) {
        int j = 0;
        for (int i = 0; i < kept->count; i += 2, j++) {
            memmove(kept->pixels + (size_t)j * kept->frameBytes, kept->pixels + (size_t)i * kept->frameBytes, kept->frameBytes);
            kept->times[j] = kept->times[i];
        }
        kept->count = j;
        kept->stride *= 2;
        if (index % kept->stride != 0) return 1;
    }
    if (!convert(converter, frame, kept->pixels + (size_t)kept->count * kept->frameBytes)) return 0;
    kept->times[kept->count++] = time;
    return 1;
}

int ollie_decode_clip(const char *path, int frames, int height, int width, int channels, int cropCenter, float *out,
                      int *framesFound, char *error, int errorSize) {
    char buffer[AV_ERROR_MAX_STRING_SIZE];
    *framesFound = 0;
    if (frames < 1 || height < 1 || width < 1 || height > OLLIE_VIDEO_MAX_SIDE || width > OLLIE_VIDEO_MAX_SIDE ||
        (channels != 1 && channels != 3)) {
        say(error, errorSize, "cannot decode to %d frames of %d×%d×%d", frames, height, width, channels);
        return 0;
    }
    struct clip clip;
    if (!open_clip(path, &clip, 1, error, errorSize)) return 0;

    struct converter converter = {0};
    converter.height = height;
    converter.width = width;
    converter.channels = channels;
    converter.rotation = clip.rotation;
    int turned = clip.rotation == 90 || clip.rotation == 270;
    /* Cropping: scale so the displayed picture covers height × width at its own aspect, then
     * copy the centred window; the same window as cropping first and resizing after. */
    int shownHeight = height, shownWidth = width;
    if (cropCenter) {
        int sourceHeight = turned ? clip.codec->width : clip.codec->height;
        int sourceWidth = turned ? clip.codec->height : clip.codec->width;
        if ((long)sourceWidth * height > (long)sourceHeight * width) {
            shownWidth = (int)lround((double)sourceWidth * height / sourceHeight);
        } else {
            shownHeight = (int)lround((double)sourceHeight * width / sourceWidth);
        }
        if (shownWidth < width) shownWidth = width;
        if (shownHeight < height) shownHeight = height;
        converter.top = (shownHeight - height) / 2;
        converter.left = (shownWidth - width) / 2;
    }
    converter.scaledWidth = turned ? shownHeight : shownWidth;
    converter.scaledHeight = turned ? shownWidth : shownHeight;
    converter.stride = (converter.scaledWidth * channels + 63) / 64 * 64;

    struct kept kept = {0};
    kept.frameBytes = (size_t)height * width * channels;
    size_t budget = (size_t)256 << 20;
    size_t fitting = budget / kept.frameBytes;
    kept.capacity = (int)(fitting < 4096 ? fitting : 4096);
    if (kept.capacity < 2 * frames) kept.capacity = 2 * frames;
    kept.capacity += kept.capacity % 2;
    kept.stride = 1;
    kept.pixels = malloc((size_t)kept.capacity * kept.frameBytes);
    kept.times = malloc((size_t)kept.capacity * sizeof(int64_t));
    converter.scaled = av_malloc((size_t)converter.stride * converter.scaledHeight);
    AVPacket *packet = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    int *chosen = malloc((size_t)frames * sizeof(int));
    int *order = malloc((size_t)kept.capacity * sizeof(int));
    int ok = 0;
    if (!kept.pixels || !kept.times || !converter.scaled || !packet || !frame || !chosen || !order) {
        say(error, errorSize, "out of memory");
        goto done;
    }

    /* A frame without a timestamp is placed one frame interval after the one before it. */
    AVRational rate = clip.stream->avg_frame_rate.num > 0 ? clip.stream->avg_frame_rate : clip.stream->r_frame_rate;
    int64_t interval = rate.num > 0 && rate.den > 0 ? av_rescale_q(1, av_inv_q(rate), clip.stream->time_base) : 1;
    if (interval < 1) interval = 1;
    int64_t decoded = 0, previous = 0, last = 0;
    int readError = 0, flushing = 0, failed = 0;
    while (!failed) {
        if (!flushing) {
            int code = av_read_frame(clip.format, packet);
            if (code < 0) {
                if (code != AVERROR_EOF) readError = code;
                flushing = 1;
                avcodec_send_packet(clip.codec, NULL);
            } else {
                /* A packet the decoder rejects is concealed by most decoders; a clip is refused
                 * below only when it yields no frames or ends before its header says. */
                if (packet->stream_index == clip.stream->index) avcodec_send_packet(clip.codec, packet);
                av_packet_unref(packet);
            }
        }
        int code;
        while ((code = avcodec_receive_frame(clip.codec, frame)) >= 0) {
            int64_t time = frame->best_effort_timestamp;
            if (time == AV_NOPTS_VALUE) time = decoded == 0 ? 0 : last + interval;
            if (!keep(&kept, &converter, frame, time, decoded)) {
                say(error, errorSize, "cannot convert its %dx%d %s frames", frame->width, frame->height,
                    av_get_pix_fmt_name(frame->format) ? av_get_pix_fmt_name(frame->format) : "unknown");
                failed = 1;
            }
            previous = last;
            last = time;
            decoded++;
            av_frame_unref(frame);
            if (failed) break;
        }
        if (flushing && code == AVERROR_EOF) break;
        if (code < 0 && code != AVERROR(EAGAIN) && code != AVERROR_EOF && flushing) break;
    }
    if (failed) goto done;
    *framesFound = decoded > INT32_MAX ? INT32_MAX : (int)decoded;
    if (readError) {
        say(error, errorSize, "damaged or truncated after %lld frames (%s)", (long long)decoded, reason(readError, buffer));
        goto done;
    }
    if (decoded == 0) {
        say(error, errorSize, "no frame could be decoded (truncated or damaged %s)", clip.decoder->name);
        goto done;
    }
    /* The container's count is exact for MP4 and AVI; a few frames short can be edit lists. */
    if (clip.stream->nb_frames > 0 && decoded * 10 < clip.stream->nb_frames * 9) {
        say(error, errorSize, "truncated: %lld of the %lld frames its header lists", (long long)decoded,
            (long long)clip.stream->nb_frames);
        goto done;
    }

    /* Decoders return frames in presentation order; sort anyway (insertion: nearly sorted). */
    for (int i = 0; i < kept.count; i++) {
        int j = i;
        while (j > 0 && kept.times[order[j - 1]] > kept.times[i]) { order[j] = order[j - 1]; j--; }
        order[j] = i;
    }

    if (decoded < frames) {
        /* Too short: every frame once, then the last one again. */
        for (int k = 0; k < frames; k++) chosen[k] = order[k < kept.count ? k : kept.count - 1];
    } else {
        /* Evenly spaced over the duration, by time: the k-th pick is the frame on screen at
         * start + (k + ½)·span / frames. The last frame lasts as long as the gap before it. */
        int64_t start = kept.times[order[0]];
        int64_t end = last + (decoded > 1 && last > previous ? last - previous : interval);
        int64_t span = end - start;
        int i = 0;
        for (int k = 0; k < frames; k++) {
            if (span <= 0) {  /* timestamps that say nothing: by position instead */
                chosen[k] = order[((int64_t)2 * k + 1) * kept.count / (2 * (int64_t)frames)];
                continue;
            }
            int64_t target = start + av_rescale_rnd(2 * (int64_t)k + 1, span, 2 * (int64_t)frames, AV_ROUND_DOWN);
            while (i + 1 < kept.count && kept.times[order[i + 1]] <= target) i++;
            chosen[k] = order[i];
        }
    }

    /* out: frames × height × width × channels. */
    for (int k = 0; k < frames; k++) {
        const uint8_t *source = kept.pixels + (size_t)chosen[k] * kept.frameBytes;
        float *target = out + (size_t)k * kept.frameBytes;
        for (size_t n = 0; n < kept.frameBytes; n++) target[n] = source[n] * (1.0f / 255.0f);
    }
    ok = 1;

done:
    free(order);
    free(chosen);
    av_frame_free(&frame);
    av_packet_free(&packet);
    av_free(converter.scaled);
    sws_freeContext(converter.scale);
    free(kept.times);
    free(kept.pixels);
    close_clip(&clip);
    return ok;
}
