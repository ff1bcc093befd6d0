package dev.driftwise.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * RankingService recommends items from a user's live interests.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: driftwise/v1/ranking_service.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class RankingServiceGrpc {

  private RankingServiceGrpc() {}

  public static final String SERVICE_NAME = "driftwise.v1.RankingService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.RecommendRequest,
      dev.driftwise.v1.RecommendResponse> getRecommendMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Recommend",
      requestType = dev.driftwise.v1.RecommendRequest.class,
      responseType = dev.driftwise.v1.RecommendResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.RecommendRequest,
      dev.driftwise.v1.RecommendResponse> getRecommendMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.RecommendRequest, dev.driftwise.v1.RecommendResponse> getRecommendMethod;
    if ((getRecommendMethod = RankingServiceGrpc.getRecommendMethod) == null) {
      synchronized (RankingServiceGrpc.class) {
        if ((getRecommendMethod = RankingServiceGrpc.getRecommendMethod) == null) {
          RankingServiceGrpc.getRecommendMethod = getRecommendMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.RecommendRequest, dev.driftwise.v1.RecommendResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Recommend"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.RecommendRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.RecommendResponse.getDefaultInstance()))
              .setSchemaDescriptor(new RankingServiceMethodDescriptorSupplier("Recommend"))
              .build();
        }
      }
    }
    return getRecommendMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.RankRequest,
      dev.driftwise.v1.RankResponse> getRankMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Rank",
      requestType = dev.driftwise.v1.RankRequest.class,
      responseType = dev.driftwise.v1.RankResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.RankRequest,
      dev.driftwise.v1.RankResponse> getRankMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.RankRequest, dev.driftwise.v1.RankResponse> getRankMethod;
    if ((getRankMethod = RankingServiceGrpc.getRankMethod) == null) {
      synchronized (RankingServiceGrpc.class) {
        if ((getRankMethod = RankingServiceGrpc.getRankMethod) == null) {
          RankingServiceGrpc.getRankMethod = getRankMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.RankRequest, dev.driftwise.v1.RankResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Rank"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.RankRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.RankResponse.getDefaultInstance()))
              .setSchemaDescriptor(new RankingServiceMethodDescriptorSupplier("Rank"))
              .build();
        }
      }
    }
    return getRankMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.StreamFeedbackRequest,
      dev.driftwise.v1.StreamFeedbackResponse> getStreamFeedbackMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "StreamFeedback",
      requestType = dev.driftwise.v1.StreamFeedbackRequest.class,
      responseType = dev.driftwise.v1.StreamFeedbackResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.StreamFeedbackRequest,
      dev.driftwise.v1.StreamFeedbackResponse> getStreamFeedbackMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.StreamFeedbackRequest, dev.driftwise.v1.StreamFeedbackResponse> getStreamFeedbackMethod;
    if ((getStreamFeedbackMethod = RankingServiceGrpc.getStreamFeedbackMethod) == null) {
      synchronized (RankingServiceGrpc.class) {
        if ((getStreamFeedbackMethod = RankingServiceGrpc.getStreamFeedbackMethod) == null) {
          RankingServiceGrpc.getStreamFeedbackMethod = getStreamFeedbackMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.StreamFeedbackRequest, dev.driftwise.v1.StreamFeedbackResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "StreamFeedback"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.StreamFeedbackRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.StreamFeedbackResponse.getDefaultInstance()))
              .setSchemaDescriptor(new RankingServiceMethodDescriptorSupplier("StreamFeedback"))
              .build();
        }
      }
    }
    return getStreamFeedbackMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.GetModelStatusRequest,
      dev.driftwise.v1.GetModelStatusResponse> getGetModelStatusMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetModelStatus",
      requestType = dev.driftwise.v1.GetModelStatusRequest.class,
      responseType = dev.driftwise.v1.GetModelStatusResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.GetModelStatusRequest,
      dev.driftwise.v1.GetModelStatusResponse> getGetModelStatusMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.GetModelStatusRequest, dev.driftwise.v1.GetModelStatusResponse> getGetModelStatusMethod;
    if ((getGetModelStatusMethod = RankingServiceGrpc.getGetModelStatusMethod) == null) {
      synchronized (RankingServiceGrpc.class) {
        if ((getGetModelStatusMethod = RankingServiceGrpc.getGetModelStatusMethod) == null) {
          RankingServiceGrpc.getGetModelStatusMethod = getGetModelStatusMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.GetModelStatusRequest, dev.driftwise.v1.GetModelStatusResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetModelStatus"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.GetModelStatusRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.GetModelStatusResponse.getDefaultInstance()))
              .setSchemaDescriptor(new RankingServiceMethodDescriptorSupplier("GetModelStatus"))
              .build();
        }
      }
    }
    return getGetModelStatusMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static RankingServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<RankingServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<RankingServiceStub>() {
        @java.lang.Override
        public RankingServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new RankingServiceStub(channel, callOptions);
        }
      };
    return RankingServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static RankingServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<RankingServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<RankingServiceBlockingStub>() {
        @java.lang.Override
        public RankingServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new RankingServiceBlockingStub(channel, callOptions);
        }
      };
    return RankingServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static RankingServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<RankingServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<RankingServiceFutureStub>() {
        @java.lang.Override
        public RankingServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new RankingServiceFutureStub(channel, callOptions);
        }
      };
    return RankingServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * RankingService recommends items from a user's live interests.
   * </pre>
   */
  public static abstract class RankingServiceImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * Recommends catalogue items for a user. A user without events gets popular and fresh items.
     * </pre>
     */
    public void recommend(dev.driftwise.v1.RecommendRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.RecommendResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRecommendMethod(), responseObserver);
    }

    /**
     * <pre>
     * Scores a caller's own candidate items for a user.
     * </pre>
     */
    public void rank(dev.driftwise.v1.RankRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.RankResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRankMethod(), responseObserver);
    }

    /**
     * <pre>
     * Applies each feedback event to the profile and answers with refreshed recommendations.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamFeedbackRequest> streamFeedback(
        io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamFeedbackResponse> responseObserver) {
      return io.grpc.stub.ServerCalls.asyncUnimplementedStreamingCall(getStreamFeedbackMethod(), responseObserver);
    }

    /**
     * <pre>
     * What ranking serves with: the last refit of the models learned from the event log and the
     * ranking settings its self-tuning chose, per profile shard.
     * </pre>
     */
    public void getModelStatus(dev.driftwise.v1.GetModelStatusRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.GetModelStatusResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetModelStatusMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getRecommendMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.driftwise.v1.RecommendRequest,
                dev.driftwise.v1.RecommendResponse>(
                  this, METHODID_RECOMMEND)))
          .addMethod(
            getRankMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.driftwise.v1.RankRequest,
                dev.driftwise.v1.RankResponse>(
                  this, METHODID_RANK)))
          .addMethod(
            getStreamFeedbackMethod(),
            io.grpc.stub.ServerCalls.asyncBidiStreamingCall(
              new MethodHandlers<
                dev.driftwise.v1.StreamFeedbackRequest,
                dev.driftwise.v1.StreamFeedbackResponse>(
                  this, METHODID_STREAM_FEEDBACK)))
          .addMethod(
            getGetModelStatusMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.driftwise.v1.GetModelStatusRequest,
                dev.driftwise.v1.GetModelStatusResponse>(
                  this, METHODID_GET_MODEL_STATUS)))
          .build();
    }
  }

  /**
   * <pre>
   * RankingService recommends items from a user's live interests.
   * </pre>
   */
  public static final class RankingServiceStub extends io.grpc.stub.AbstractAsyncStub<RankingServiceStub> {
    private RankingServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected RankingServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new RankingServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Recommends catalogue items for a user. A user without events gets popular and fresh items.
     * </pre>
     */
    public void recommend(dev.driftwise.v1.RecommendRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.RecommendResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRecommendMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Scores a caller's own candidate items for a user.
     * </pre>
     */
    public void rank(dev.driftwise.v1.RankRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.RankResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRankMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Applies each feedback event to the profile and answers with refreshed recommendations.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamFeedbackRequest> streamFeedback(
        io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamFeedbackResponse> responseObserver) {
      return io.grpc.stub.ClientCalls.asyncBidiStreamingCall(
          getChannel().newCall(getStreamFeedbackMethod(), getCallOptions()), responseObserver);
    }

    /**
     * <pre>
     * What ranking serves with: the last refit of the models learned from the event log and the
     * ranking settings its self-tuning chose, per profile shard.
     * </pre>
     */
    public void getModelStatus(dev.driftwise.v1.GetModelStatusRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.GetModelStatusResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetModelStatusMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * <pre>
   * RankingService recommends items from a user's live interests.
   * </pre>
   */
  public static final class RankingServiceBlockingStub extends io.grpc.stub.AbstractBlockingStub<RankingServiceBlockingStub> {
    private RankingServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected RankingServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new RankingServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Recommends catalogue items for a user. A user without events gets popular and fresh items.
     * </pre>
     */
    public dev.driftwise.v1.RecommendResponse recommend(dev.driftwise.v1.RecommendRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRecommendMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Scores a caller's own candidate items for a user.
     * </pre>
     */
    public dev.driftwise.v1.RankResponse rank(dev.driftwise.v1.RankRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRankMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * What ranking serves with: the last refit of the models learned from the event log and the
     * ranking settings its self-tuning chose, per profile shard.
     * </pre>
     */
    public dev.driftwise.v1.GetModelStatusResponse getModelStatus(dev.driftwise.v1.GetModelStatusRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetModelStatusMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * RankingService recommends items from a user's live interests.
   * </pre>
   */
  public static final class RankingServiceFutureStub extends io.grpc.stub.AbstractFutureStub<RankingServiceFutureStub> {
    private RankingServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected RankingServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new RankingServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Recommends catalogue items for a user. A user without events gets popular and fresh items.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.driftwise.v1.RecommendResponse> recommend(
        dev.driftwise.v1.RecommendRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRecommendMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Scores a caller's own candidate items for a user.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.driftwise.v1.RankResponse> rank(
        dev.driftwise.v1.RankRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRankMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * What ranking serves with: the last refit of the models learned from the event log and the
     * ranking settings its self-tuning chose, per profile shard.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.driftwise.v1.GetModelStatusResponse> getModelStatus(
        dev.driftwise.v1.GetModelStatusRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetModelStatusMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_RECOMMEND = 0;
  private static final int METHODID_RANK = 1;
  private static final int METHODID_GET_MODEL_STATUS = 2;
  private static final int METHODID_STREAM_FEEDBACK = 3;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final RankingServiceImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(RankingServiceImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_RECOMMEND:
          serviceImpl.recommend((dev.driftwise.v1.RecommendRequest) request,
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.RecommendResponse>) responseObserver);
          break;
        case METHODID_RANK:
          serviceImpl.rank((dev.driftwise.v1.RankRequest) request,
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.RankResponse>) responseObserver);
          break;
        case METHODID_GET_MODEL_STATUS:
          serviceImpl.getModelStatus((dev.driftwise.v1.GetModelStatusRequest) request,
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.GetModelStatusResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_STREAM_FEEDBACK:
          return (io.grpc.stub.StreamObserver<Req>) serviceImpl.streamFeedback(
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamFeedbackResponse>) responseObserver);
        default:
          throw new AssertionError();
      }
    }
  }

  private static abstract class RankingServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    RankingServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.driftwise.v1.RankingServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("RankingService");
    }
  }

  private static final class RankingServiceFileDescriptorSupplier
      extends RankingServiceBaseDescriptorSupplier {
    RankingServiceFileDescriptorSupplier() {}
  }

  private static final class RankingServiceMethodDescriptorSupplier
      extends RankingServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final String methodName;

    RankingServiceMethodDescriptorSupplier(String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (RankingServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new RankingServiceFileDescriptorSupplier())
              .addMethod(getRecommendMethod())
              .addMethod(getRankMethod())
              .addMethod(getStreamFeedbackMethod())
              .addMethod(getGetModelStatusMethod())
              .build();
        }
      }
    }
    return result;
  }
}
